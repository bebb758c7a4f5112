/** kiln:package options -> RpmSpec (the .rpm half of the package recipe). */
import type { PkgFile } from '../pkg/files.js';
import type { RpmScript, RpmSpec } from '../pkg/rpm.js';
import type { BuildContext, PlanContext } from '../recipe.js';
import { debRelToRpm, RPM_ARCH, rpmVersionRelease, script, splitDeps } from './package.js';

const RPM_SCRIPT = { preinstall: 'pre', postinstall: 'post', preremove: 'preun', postremove: 'postun' } as const;

function toScript(text: string | undefined): RpmScript | undefined {
  if (!text) return undefined;
  const m = /^#!\s*(\S+)/.exec(text);
  return { body: text, prog: m ? m[1] : '/bin/sh' };
}

export function rpmSpecFromOptions(ctx: BuildContext | PlanContext, files: PkgFile[], sde: number): RpmSpec {
  const o = ctx.options;
  const { epoch, version, release } = rpmVersionRelease(o);
  const arch = o.get('architecture')!.trim();
  /** rpm-X given: lines as they are; else the Debian field translated */
  const deps = (rpmName: string, debName?: string): string[] => {
    if (o.get(`rpm-${rpmName}`) !== undefined) return o.lines(`rpm-${rpmName}`).flatMap((l) => l.split(/,\s*/)).filter(Boolean);
    return debName ? splitDeps(o.get(debName)).map(debRelToRpm) : [];
  };
  const scripts: NonNullable<RpmSpec['scripts']> = {};
  for (const [common, rpm] of Object.entries(RPM_SCRIPT) as Array<[keyof typeof RPM_SCRIPT, (typeof RPM_SCRIPT)[keyof typeof RPM_SCRIPT]]>) {
    scripts[rpm] = toScript(script(o, `rpm-${rpm}`) ?? script(o, common));
  }
  scripts.pretrans = toScript(script(o, 'rpm-pretrans'));
  scripts.posttrans = toScript(script(o, 'rpm-posttrans'));
  const maintainer = o.require('maintainer').trim();
  const changelogText = o.get('changelog')?.trim() || '- Package built by kiln.';
  return {
    name: o.require('name').trim(),
    version,
    release,
    epoch,
    arch: RPM_ARCH[arch] ?? arch,
    summary: o.require('summary').trim(),
    description: o.get('description')?.trim() || o.require('summary').trim(),
    license: o.get('license')!.trim(),
    group: o.get('group')?.trim(),
    url: o.get('homepage')?.trim() || undefined,
    vendor: o.get('vendor')?.trim() || undefined,
    packager: maintainer,
    requires: [...deps('requires', 'depends'), ...deps('pre-depends', 'pre-depends')],
    provides: deps('provides', 'provides'),
    conflicts: [...deps('conflicts', 'conflicts'), ...deps('breaks', 'breaks')],
    obsoletes: deps('obsoletes'),
    recommends: deps('recommends', 'recommends'),
    suggests: deps('suggests', 'suggests'),
    enhances: deps('enhances', 'enhances'),
    files,
    scripts,
    changelog: [{ time: sde, author: `${maintainer} - ${epoch !== undefined ? `${epoch}:` : ''}${version}-${release}`, text: changelogText }],
    compression: o.get('compression')!.trim() as RpmSpec['compression'],
    sourceDateEpoch: sde,
    signingKey: o.path('signing-key') && o.list('sign').includes('rpm') ? { keyFile: o.path('signing-key')!, passphraseFile: o.path('signing-key-passphrase-file') } : undefined,
    sourceRpm: `${o.get('source')?.trim() || o.require('name').trim()}-${version}-${release}.src.rpm`,
  };
}
