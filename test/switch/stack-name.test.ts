import { describe, expect, it } from 'vitest';
import { colourOfStackName, stackName } from '../../src/switch/stack-name.ts';

describe('stack names', () => {
  it('carry the environment and colour, and give the colour back', () => {
    const name = stackName('dev-eu', 'green', '1a2b3c4d');
    expect(name).toBe('navcloud-dev-eu-green-1a2b3c4d');
    expect(colourOfStackName(name)).toBe('green');
    expect(colourOfStackName(stackName('blue', 'blue', 'x1'))).toBe('blue');
  });

  it('give no colour for no name or one they did not build, and refuse an id that would make one unreadable', () => {
    expect(colourOfStackName('legacy-stack')).toBeUndefined();
    expect(colourOfStackName('navcloud-dev-red-1234')).toBeUndefined();
    expect(colourOfStackName('')).toBeUndefined();
    expect(colourOfStackName(undefined)).toBeUndefined();
    expect(() => stackName('dev', 'blue', 'a-b')).toThrow(/lower-case letters and digits/);
  });
});
