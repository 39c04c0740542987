import { describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { environmentSchema, repoRoot } from '../../src/config/environment.ts';
import { stackName } from '../../src/switch/stack-name.ts';
import { readTemplate } from './cfn-yaml.ts';

/**
 * The IAM patterns of infra/orchestrator.yaml are per environment. Names are built from
 * segments joined by '-', so a pattern for `prod` could match the stacks of `prod-eu`; the
 * colours delimit the names instead. This checks, over every pair of environment names built
 * from a small alphabet of segments, that no pattern of one matches a resource of the other.
 */

const account = '123456789012';
const region = 'eu-west-1';
const stackId = 'a1b2c3d4-0000-1111-2222-333344445555';

/** Every string in the template that names an environment's resources, as a !Sub source. */
function envPatterns(node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string') {
    if (node.includes('${EnvName}') && node.includes('navcloud-${EnvName}')) out.push(node);
  } else if (Array.isArray(node)) node.forEach((n) => envPatterns(n, out));
  else if (node && typeof node === 'object') Object.values(node).forEach((n) => envPatterns(n, out));
  return out;
}

function substitute(source: string, env: string): string {
  return source
    .replaceAll('${EnvName}', env)
    .replaceAll('${AWS::Partition}', 'aws')
    .replaceAll('${AWS::Region}', region)
    .replaceAll('${AWS::AccountId}', account)
    .replaceAll('${BackupBucket}', 'navcloud-backups')
    .replaceAll('${HostedZoneId}', 'Z0123456789ABCDEFGHIJ');
}

/** IAM's wildcards, read permissively (`*` also crosses ':' and '/'), so "never matches" is the stronger claim. */
function iamPattern(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** What one environment's switches create, named as the workflow and the templates name them. */
function resourcesOf(env: string): string[] {
  return (['blue', 'green'] as const).flatMap((colour) => {
    const stack = stackName(env, colour, '3f2a9c1e');
    return [
      `arn:aws:cloudformation:${region}:${account}:stack/${stack}/${stackId}`,
      `arn:aws:s3:::navcloud-backups/templates/${stack}/0123abcd-app-stack.yaml`,
      ...['riak', 'api'].flatMap((part) => [
        `arn:aws:iam::${account}:role/${stack}-${part}`,
        `arn:aws:iam::${account}:instance-profile/${stack}-${part}`,
      ]),
      `${stack}.stacks.navcloud.example.com`,
    ];
  });
}

/** Names of one to three segments over a few that provoke prefixes, the colours included. */
function candidateNames(): string[] {
  const segments = ['prod', 'eu', 'blue', 'green', 'bluex'];
  const names = new Set<string>();
  const grow = (name: string, depth: number) => {
    names.add(name);
    if (depth < 3) for (const s of segments) grow(`${name}-${s}`, depth + 1);
  };
  for (const s of segments) grow(s, 1);
  return [...names];
}

describe('IAM name patterns of infra/orchestrator.yaml', () => {
  it("never match another environment's stacks, templates, roles, instance profiles or records", async () => {
    const template = await readTemplate('orchestrator.yaml');
    const sources = envPatterns(template.Resources);
    expect(sources.length).toBeGreaterThanOrEqual(10);
    const names = candidateNames().filter((n) => environmentSchema.shape.name.safeParse(n).success);
    expect(names).toEqual(expect.arrayContaining(['prod', 'prod-eu', 'eu-prod', 'blue', 'prod-bluex']));
    const resources = new Map(names.map((n) => [n, resourcesOf(n)]));
    const crossings: string[] = [];
    for (const env of names) {
      const patterns = sources.map((s) => iamPattern(substitute(s, env)));
      // Each of an environment's own resources is covered by one of its patterns.
      for (const own of resources.get(env)!) {
        if (!patterns.some((p) => p.test(own))) crossings.push(`${env}: nothing matches its own ${own}`);
      }
      for (const other of names) {
        if (other === env) continue;
        for (const resource of resources.get(other)!) {
          const hit = patterns.find((p) => p.test(resource));
          if (hit) crossings.push(`${env}'s ${hit} matches ${other}'s ${resource}`);
        }
      }
    }
    expect(crossings.slice(0, 5)).toEqual([]);
  });

  it("the template's EnvName pattern and the environment schema accept the same names", async () => {
    const allowed = new RegExp((await readTemplate('orchestrator.yaml')).Parameters.EnvName!.AllowedPattern!);
    const all = candidateNames();
    for (const name of all) expect(allowed.test(name), name).toBe(environmentSchema.shape.name.safeParse(name).success);
    expect(all.filter((n) => allowed.test(n)).length).toBeGreaterThan(40);
    for (const refused of ['prod-blue', 'prod-green-eu', 'a-blue-b'])
      expect(allowed.test(refused), refused).toBe(false);
  });

  it('an environment named with a colour part is refused with the reason', () => {
    const result = environmentSchema.shape.name.safeParse('prod-blue');
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toMatch(/no '-blue' or '-green' part/);
  });

  it('stack names are built by stackName() alone, so the names checked above are the names made', async () => {
    // The frozen previous release (workflows/v1) keeps its own copy until it is deleted.
    const dirs = ['src', 'workflows', 'activities'];
    const sources = (await Promise.all(dirs.map((dir) => readdir(resolve(repoRoot, dir), { recursive: true }))))
      .flatMap((names, i) => names.map((name) => `${dirs[i]}/${name}`))
      .filter(
        (path) => path.endsWith('.ts') && path !== 'src/switch/stack-name.ts' && !path.startsWith('workflows/v1/'),
      );
    const building = [];
    for (const path of sources)
      if (/`navcloud-\$\{/.test(await readFile(resolve(repoRoot, path), 'utf8'))) building.push(path);
    expect(building).toEqual([]);
  });
});
