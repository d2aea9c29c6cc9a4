"""Write README.md from nbs/index.ipynb (what `nbdev-readme` does, without needing Quarto).

The title cell `# name` + `> summary` becomes the heading and a blockquote; code cells are skipped
(index.ipynb has none that a reader needs). `tests/test_project.py` checks the two stay in sync.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    cells = json.loads(Path(nb_path).read_text())['cells']
    parts = [''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown']
    return '\n\n'.join(p for p in parts if p) + '\n'

if __name__ == '__main__':
    out = ROOT/'README.md'
    out.write_text(render())
    print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)
