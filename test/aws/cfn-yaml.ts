import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse, type Tags } from 'yaml';
import { repoRoot } from '../../src/config/environment.ts';

/** CloudFormation's short-form intrinsics, read into their long form. */
const intrinsics = [
  'Ref',
  'Sub',
  'GetAtt',
  'If',
  'Select',
  'Split',
  'ImportValue',
  'Equals',
  'Not',
  'And',
  'Or',
  'Join',
  'GetAZs',
  'Cidr',
  'Base64',
  'FindInMap',
  'Condition',
];
const longName = (n: string) => (n === 'Ref' || n === 'Condition' ? n : `Fn::${n}`);
export const cfnTags: Tags = intrinsics.flatMap((n) => [
  { tag: `!${n}`, resolve: (s: string) => ({ [longName(n)]: n === 'GetAtt' ? s.split('.') : s }) },
  {
    tag: `!${n}`,
    collection: 'seq' as const,
    resolve: (seq: { toJSON(): unknown }) => ({ [longName(n)]: seq.toJSON() }),
  },
  {
    tag: `!${n}`,
    collection: 'map' as const,
    resolve: (map: { toJSON(): unknown }) => ({ [longName(n)]: map.toJSON() }),
  },
]);

export interface Template {
  Parameters: Record<string, { Type: string; Default?: unknown; AllowedPattern?: string }>;
  Resources: Record<string, { Type: string; Properties: Record<string, any>; Metadata?: Record<string, any> }>;
  Outputs: Record<string, any>;
}

/** A template of infra/ (path relative to it), intrinsics in their long form. */
export async function readTemplate(file: string): Promise<Template> {
  return parse(await readFile(resolve(repoRoot, 'infra', file), 'utf8'), { customTags: cfnTags }) as Template;
}
