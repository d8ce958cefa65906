"""Check helpers shared by the python-9p driver scripts: one line per check, exit on the first
failure."""

import sys

from py9p import RemoteError

count = 0


def check(cond, what):
    global count
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    count += 1
    print("ok:", what, flush=True)


def expect_error(fn, text, what):
    try:
        fn()
    except RemoteError as e:
        check(str(e) == text, f"{what}: got {str(e)!r}, want {text!r}")
        return
    check(False, f"{what}: no error")
