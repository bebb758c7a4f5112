#!/usr/bin/python3
"""Differential-test oracle: resolve buildout configs with Debian's real zc.buildout.

Usage: /usr/bin/python3 scripts/buildout-oracle.py [--online] CFG...
       (or CFG paths, one per line, on stdin when no CFG is given)

Prints one JSON document per line per config, in argument order:
  {"file": CFG, "sections": [[section, [[option, value], ...]], ...]}
or
  {"file": CFG, "error": {"type": ExceptionClass, "kind": KIND, "message": str}}

Every section is fetched (``buildout[name]``, which runs Options._initialize:
``<=`` macros and substitution of every option) and then every option is read
(``options[key]``), so lazy substitution is fully triggered. Recipes are never
loaded (Options.initialize is a no-op) and directories are never created.
The override ``buildout:offline=true`` is always passed (unless --online).
"""
import collections
import collections.abc

collections.MutableMapping = collections.abc.MutableMapping

import json
import logging
import os
import sys

import zc.buildout
import zc.buildout.buildout
import zc.buildout.configparser

zc.buildout.buildout.Options.initialize = lambda self: None


def _no_mkdir(*args, **kw):
    return None


# Buildout.__init__ creates eggs-directory / download-cache: never touch the fixtures.
os.makedirs = _no_mkdir
os.mkdir = _no_mkdir


def kind_of(exc):
    msg = str(exc)
    if isinstance(exc, zc.buildout.configparser.ParsingError):
        return 'syntax'
    if isinstance(exc, zc.buildout.buildout.MissingSection):
        return 'missing-section'
    if isinstance(exc, zc.buildout.buildout.MissingOption):
        return 'missing-option'
    if isinstance(exc, zc.buildout.UserError):
        if 'Circular reference' in msg:
            return 'cycle'
        if 'Infinite extending loop' in msg:
            return 'macro-loop'
        if 'Recursive file include' in msg:
            return 'extends-loop'
        if msg.startswith('No section named'):
            return 'missing-section'
        if msg.startswith('The substitution,') or 'in substitution,' in msg:
            return 'substitution-syntax'
        if "Couldn't download" in msg or 'Error downloading' in msg:
            return 'io'
        return 'user'
    if isinstance(exc, UnicodeDecodeError):
        return 'io'
    if isinstance(exc, RecursionError):
        return 'recursion'
    if isinstance(exc, (SyntaxError, NameError, AttributeError, TypeError,
                        IndexError, ValueError)):
        return 'condition'
    if isinstance(exc, (IOError, OSError)):
        return 'io'
    return 'other'


def resolve(cfg, online):
    overrides = [] if online else [('buildout', 'offline', 'true')]
    b = zc.buildout.buildout.Buildout(cfg, overrides, user_defaults=False)
    out = []
    for name in list(b.keys()):
        options = b[name]
        out.append([name, [[k, options[k]] for k in options.keys()]])
    return out


def main(argv):
    online = False
    if argv and argv[0] == '--online':
        online = True
        argv = argv[1:]
    files = argv or [l.strip() for l in sys.stdin if l.strip()]
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # buildout's logging handlers write to sys.stdout
    cwd = os.getcwd()
    root = logging.getLogger()
    for cfg in files:
        cfg = os.path.abspath(cfg)
        try:
            result = {'file': cfg, 'sections': resolve(cfg, online)}
        except Exception as exc:  # report every failure as data
            result = {'file': cfg, 'error': {
                'type': type(exc).__name__, 'kind': kind_of(exc),
                'message': str(exc)}}
        finally:
            os.chdir(cwd)
            for h in list(root.handlers):
                root.removeHandler(h)
            zlog = logging.getLogger('zc.buildout')
            for h in list(zlog.handlers):
                zlog.removeHandler(h)
        real_stdout.write(json.dumps(result) + '\n')
        real_stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
