import { InvalidArgumentError } from 'commander';

/** A commander option parser for a whole number in [min, max]; `what` names it in the error. */
export function wholeNumber(
  min: number,
  max: number,
  what = `a whole number from ${min} to ${max}`,
): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected ${what}, got '${value}'`);
    return n;
  };
}
