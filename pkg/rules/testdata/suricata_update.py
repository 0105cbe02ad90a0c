"""Run suricata-update's rule parser (suricata.update.rule) for the Go tests.

Usage:
  suricata_update.py dump ROOT FILE...   one JSON object per rule, then one
                                         {"file", "errors"} object per file
  suricata_update.py bench ITER FILE...  time rule.parse_fileobj over the
                                         files, read into memory first, ITER
                                         times; print {"rules", "seconds"}

File names in the output are relative to ROOT, with '/' separators. In the
dump, "msg" is the text Suricata shows in an alert (suricata_msg models
src/detect-msg.c) and "msg_raw" is suricata-update's msg, escapes kept.
"""

import io
import json
import logging
import os
import re
import sys
import time

from suricata.update import rule as surirule


class _Count(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self)
        self.n = 0

    def emit(self, record):
        self.n += 1


def suricata_msg(raw):
    """Unescape a msg value as Suricata's DetectMsgSetup (src/detect-msg.c)
    does: a backslash that is not itself escaped is dropped and the
    character after it kept, whatever it is ("we remove the extra '\\' to
    mimic snort"; its unit test turns \\w\\x\\y into wxy); a backslash at
    the very end is dropped. suricata-update's r["msg"] is the raw text."""
    out = []
    escape = False
    for c in raw:
        if not escape and c == "\\":
            escape = True
        else:
            escape = False
            out.append(c)
    return "".join(out)


_KV = re.compile(r"(\S*)\s*(.*)", re.S)


def _header(r, name):
    v = r.get(name)
    return "" if v is None else v


def dump(root, files):
    counter = _Count()
    log = logging.getLogger(surirule.__name__)
    log.addHandler(counter)
    log.propagate = False
    out = sys.stdout
    for path in files:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        counter.n = 0
        for r in surirule.parse_file(path, group=rel):
            refs = []
            for ref in r["references"]:
                if ref:
                    t, _, v = ref.partition(",")
                    refs.append([t.strip(), v.strip()])
            meta = []
            for m in r["metadata"]:
                if m:
                    k, v = _KV.match(m).groups()
                    meta.append([k, v.strip()])
            out.write(json.dumps({
                "file": rel,
                "gid": r["gid"],
                "sid": r["sid"],
                "rev": r["rev"],
                "enabled": r["enabled"],
                "action": r["action"],
                "proto": _header(r, "proto"),
                "src": _header(r, "source_addr"),
                "sport": _header(r, "source_port"),
                "direction": _header(r, "direction"),
                "dst": _header(r, "dest_addr"),
                "dport": _header(r, "dest_port"),
                "msg": suricata_msg(r["msg"]),
                "msg_raw": r["msg"],
                "classtype": r["classtype"] or "",
                "references": refs,
                "metadata": meta,
                "flowbits": [f or "" for f in r["flowbits"]],
                "raw": r["raw"],
            }) + "\n")
        out.write(json.dumps({"file": rel, "errors": counter.n}) + "\n")


def bench(iterations, files):
    logging.getLogger(surirule.__name__).disabled = True
    texts = []
    for path in files:
        with io.open(path, encoding="utf-8") as f:
            texts.append(f.read())
    rules = 0
    start = time.perf_counter()
    for _ in range(iterations):
        for text in texts:
            rules += len(surirule.parse_fileobj(io.StringIO(text)))
    seconds = time.perf_counter() - start
    print(json.dumps({"rules": rules, "seconds": seconds}))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "bench":
        bench(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
