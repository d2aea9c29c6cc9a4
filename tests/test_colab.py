"""The Colab notebook (colab/batch_on_colab.ipynb) cannot run here (no internet, no Colab, no GPU), so what can be checked
is checked: it is a valid nbformat 4 notebook stored as nbdev-clean leaves it (no outputs), every cell is valid
IPython, what it imports from the package exists, it installs from the repository pyproject names, it turns on mixed
precision only with a GPU, and every `cryptoforecast ...` line it runs is accepted by that command's own parser (the
batch parameters by the template's parameter checks)."""
import ast, importlib, re, shlex, shutil, subprocess, sys, tomllib

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT/'colab'/'batch_on_colab.ipynb'

@pytest.fixture(scope='module')
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)

def code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == 'code']

def shell_lines(nb, prog: str) -> list[str]:
    "The `!prog ...` lines of the notebook's code cells (indented ones too), without the `!`."
    return [l.strip()[1:] for src in code(nb) for l in src.splitlines() if l.strip().startswith(f'!{prog} ')]

def settings(nb, tmp_path) -> dict:
    "The settings cell's values, and paths under `tmp_path` for the names the data cell sets."
    ns = {}
    exec(next(s for s in code(nb) if s.lstrip().startswith('REPO =')), ns)
    return {**{k: v for k, v in ns.items() if k.isupper()},
            'DATA_DIR': str(tmp_path/'raw'), 'OUT': str(tmp_path/'runs'), 'ARTIFACTS': str(tmp_path/'artifacts')}

def argv(line: str, values: dict) -> list[str]:
    "A shell line as IPython runs it: `{NAME}` replaced by the notebook's value, then split like a shell does."
    return shlex.split(re.sub(r'\{(\w+)\}', lambda m: str(values[m.group(1)]), line))

def test_notebook_is_valid_and_stored_clean(nb, tmp_path):
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for c in nb.cells:
        if c.cell_type == 'code': assert c.outputs == [] and c.execution_count is None, c.source[:80]
    copy = tmp_path/NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    subprocess.run([sys.executable, '-c', 'from nbdev.clean import nbdev_clean; nbdev_clean()', '--fname', str(copy)],
                   cwd=ROOT, check=True, capture_output=True)
    assert copy.read_bytes() == NOTEBOOK.read_bytes(), 'nbdev-clean changes colab/batch_on_colab.ipynb: run it on the file'

def test_every_cell_is_valid_ipython_and_its_imports_exist(nb):
    from IPython.core.inputtransformer2 import TransformerManager
    for src in code(nb):
        tree = ast.parse(TransformerManager().transform_cell(src))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('cryptoforecast'):
                mod = importlib.import_module(node.module)
                for alias in node.names: assert hasattr(mod, alias.name), f"{node.module}.{alias.name}"

def test_it_installs_from_the_repository_and_uses_mixed_precision_only_on_a_gpu(nb, tmp_path):
    repo = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['urls']['Repository']
    values = settings(nb, tmp_path)
    assert values['REPO'] == repo
    assert any(argv(l, values)[:3] == ['pip', 'install', '--quiet'] and f'git+{repo}@' in l.format(**values)
               for l in shell_lines(nb, 'pip')), shell_lines(nb, 'pip')
    assert any(argv(l, values)[:2] == ['git', 'clone'] for l in shell_lines(nb, 'git'))
    gpu_cell = next(s for s in code(nb) if 'set_global_policy' in s)
    assert "if gpus: keras.mixed_precision.set_global_policy('mixed_float16')" in gpu_cell
    assert set(values['MODELS'].split(',')) >= {'lstm', 'transformer'}      # a deep model per coin

def test_its_commands_are_the_projects(nb, tmp_path):
    from cryptoforecast import batch, cli, data_cli
    values = settings(nb, tmp_path)
    lines = shell_lines(nb, 'cryptoforecast')
    assert len(lines) >= 4, lines
    seen = set()
    for line in lines:
        args = argv(line, values)[1:]
        if args == ['--version']: continue
        assert args[0] in cli.COMMANDS, line
        seen.add(args[0] if args[0] != 'data' else f'data {args[1]}')
        if args[0] == 'data': data_cli.data_parser().parse_args(args[1:])
        elif args[0] == 'batch':
            a = batch._parser().parse_args(args[1:])
            params = {k: batch.parse_value(v) for k, v in a.parameter}
            if a.epochs is not None: params['epochs'] = a.epochs
            checked = batch.check_parameters(params, batch.find_template(a.template))
            assert checked['models'] == values['MODELS'] and checked['epochs'] == values['EPOCHS'], checked
        else: raise AssertionError(f"no parser check for {line!r}: add one")
    assert seen == {'data download', 'data check', 'batch'}, seen

def test_its_benchmark_line_is_accepted(nb, tmp_path):
    (line,) = shell_lines(nb, 'python')
    args = argv(line, settings(nb, tmp_path))
    assert (ROOT/args[1]).is_file(), args
    r = subprocess.run([sys.executable, *args[1:], '--help'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr                      # the flags before --help are parsed (and checked) first
