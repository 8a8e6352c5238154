"""tests/cookbook/extract.py - writes the runnable blocks of a Markdown file.

    python3 extract.py docs/cookbook.md OUTDIR

A block whose info string is "sh cookbook NAME" becomes OUTDIR/NN-NAME.sh;
"sh cookbook-later NAME" is listed in OUTDIR/later.txt (needs a feature not
built yet). Other blocks are prose. Prints the block names in order."""

import os
import sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
block, name, kind, n, later = None, None, None, 0, []
for line in open(src, encoding="utf-8"):
    if block is None:
        if line.startswith("```sh cookbook"):
            words = line[3:].split()
            kind, name = words[1], words[2] if len(words) > 2 else "block%d" % n
            block = []
    elif line.startswith("```"):
        if kind == "cookbook":
            n += 1
            with open(os.path.join(out, "%02d-%s.sh" % (n, name)), "w", encoding="utf-8") as f:
                f.write("".join(block))
            print(name)
        else:
            later.append(name)
        block = None
    else:
        block.append(line)
with open(os.path.join(out, "later.txt"), "w") as f:
    f.write("".join(l + "\n" for l in later))
