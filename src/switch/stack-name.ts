/**
 * Stack names, `navcloud-<env>-<colour>-<id>`: the one place they are built (by the switch, by the
 * seeder of a local environment and by tests) and read back. The colour is read back from a name
 * only when DNS still names a stack that no longer exists, so the next stack still gets the other
 * colour. The IAM patterns of infra/orchestrator.yaml assume this shape.
 * Pure: workflow code imports this file.
 */
import type { Colour } from '../cloud/ports.ts';

const STACK_NAME = /^navcloud-(.+)-(blue|green)-([a-z0-9]+)$/;

/** `id` tells stacks of one colour apart: a part of the creating run's id, or random letters. */
export function stackName(env: string, colour: Colour, id: string): string {
  if (!/^[a-z0-9]+$/.test(id)) throw new Error(`stack id '${id}' must be lower-case letters and digits`);
  return `navcloud-${env}-${colour}-${id}`;
}

/** The colour a stack name carries, or undefined for no name or one this module did not build. */
export function colourOfStackName(name: string | undefined): Colour | undefined {
  return name ? (STACK_NAME.exec(name)?.[2] as Colour | undefined) : undefined;
}
