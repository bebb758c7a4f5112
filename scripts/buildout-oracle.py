#!/usr/bin/python3
"""Differential-test oracle: resolve buildout configs with Debian's real zc.buildout.

Usage: /usr/bin/python3 scripts/buildout-oracle.py [--online] [--recipes] [--set SECTION:OPTION=VALUE]... CFG...
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

--recipes: instead of the no-op, a test recipe initialises every section with a
``recipe``, as the SlapOS recipes do: ``location`` (when the section does not set it)
= parts-directory/NAME, and for slapos.recipe.build:download (not extracting)
``target`` = location/(filename, or the last component of the url).
--set: more overrides (e.g. buildout:parts-directory=...).

Debian's zc.buildout 2.13 does not know ``${:_profile_base_location_}`` (an extension of
SlapOS's buildout): it is emulated as that buildout does it, when a file is read every
``${:_profile_base_location_}`` outside ``$$`` escapes in its values becomes the file's
directory (normalised) or URL prefix.
"""
import collections
import collections.abc

collections.MutableMapping = collections.abc.MutableMapping

import json
import logging
import os
import sys
import urllib.parse

import zc.buildout
import zc.buildout.buildout
import zc.buildout.configparser

zc.buildout.buildout.Options.initialize = lambda self: None


def _test_recipe_initialize(self):
    if 'location' not in self:
        self['location'] = os.path.join(self.buildout['buildout']['parts-directory'], self.name)
    recipe = self.get('recipe', '').strip()
    if recipe in ('slapos.recipe.build:download', 'kiln:download') and 'target' not in self \
            and self.get('extract', 'false').strip().lower() not in ('true', 'yes', 'on', '1'):
        if 'filename' in self:
            name = self['filename']
        else:
            url = self['url'].strip().rstrip('/')
            name = urllib.parse.unquote(urllib.parse.urlparse(url).path.split('/')[-1] if '://' in url else url.split('/')[-1]) or 'download'
        self['target'] = os.path.join(self['location'], name)


_PROFILE_BASE = '${:_profile_base_location_}'
_parse = zc.buildout.configparser.parse


def _parse_with_profile_base(fp, fpname, exp_globals=dict):
    result = _parse(fp, fpname, exp_globals)
    if '://' in fpname:
        base = fpname[:fpname.rfind('/')]
    else:
        base = os.path.dirname(os.path.normpath(os.path.abspath(fpname)))
    for section in result.values():
        for k, v in list(section.items()):
            if _PROFILE_BASE in v:
                section[k] = '$$'.join(p.replace(_PROFILE_BASE, base) for p in v.split('$$'))
    return result


zc.buildout.configparser.parse = _parse_with_profile_base


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


def resolve(cfg, online, extra=()):
    overrides = ([] if online else [('buildout', 'offline', 'true')]) + list(extra)
    b = zc.buildout.buildout.Buildout(cfg, overrides, user_defaults=False)
    out = []
    for name in list(b.keys()):
        options = b[name]
        out.append([name, [[k, options[k]] for k in options.keys()]])
    return out


def main(argv):
    online = False
    extra = []
    while argv and argv[0].startswith('--'):
        if argv[0] == '--online':
            online = True
        elif argv[0] == '--recipes':
            zc.buildout.buildout.Options.initialize = _test_recipe_initialize
        elif argv[0] == '--set':
            sect, rest = argv[1].split(':', 1)
            opt, val = rest.split('=', 1)
            extra.append((sect, opt, val))
            argv = argv[1:]
        argv = argv[1:]
    files = argv or [l.strip() for l in sys.stdin if l.strip()]
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # buildout's logging handlers write to sys.stdout
    cwd = os.getcwd()
    root = logging.getLogger()
    for cfg in files:
        cfg = os.path.abspath(cfg)
        try:
            result = {'file': cfg, 'sections': resolve(cfg, online, extra)}
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
