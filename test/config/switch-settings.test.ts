/** The environment fields the switch protocol adds or bounds: the fence lease, the write pause and the longest verification. */
import { describe, expect, it } from 'vitest';
import { MAX_VERIFY_SECONDS, parseEnvironment } from '../../src/config/environment.ts';
import { qaEnvironmentFile } from '../support/environment-file.ts';

describe('switch settings of an environment file', () => {
  it('fences for 60 seconds unless fenceLeaseSeconds says otherwise', () => {
    expect(parseEnvironment('/x/qa.yaml', qaEnvironmentFile()).fenceLeaseSeconds).toBe(60);
    expect(parseEnvironment('/x/qa.yaml', qaEnvironmentFile('fenceLeaseSeconds: 120')).fenceLeaseSeconds).toBe(120);
  });

  it('refuses a lease too short to copy a last delta under, naming the field', () => {
    expect(() => parseEnvironment('/x/qa.yaml', qaEnvironmentFile('fenceLeaseSeconds: 2'))).toThrow(
      /\/x\/qa\.yaml: field 'fenceLeaseSeconds'/,
    );
  });

  it('holds writes at most 30 seconds from the fence to the commit unless maxWritePauseSeconds says otherwise, a whole number of seconds', () => {
    expect(parseEnvironment('/x/qa.yaml', qaEnvironmentFile()).maxWritePauseSeconds).toBe(30);
    expect(parseEnvironment('/x/qa.yaml', qaEnvironmentFile('maxWritePauseSeconds: 5')).maxWritePauseSeconds).toBe(5);
    for (const bad of ['0', '2.5', '"30"', '3601']) {
      expect(() => parseEnvironment('/x/qa.yaml', qaEnvironmentFile(`maxWritePauseSeconds: ${bad}`))).toThrow(
        /\/x\/qa\.yaml: field 'maxWritePauseSeconds'/,
      );
    }
  });

  it("bounds verifySeconds, so that a switch's history stays small", () => {
    expect(
      parseEnvironment('/x/qa.yaml', qaEnvironmentFile('', { verifySeconds: MAX_VERIFY_SECONDS })).verifySeconds,
    ).toBe(MAX_VERIFY_SECONDS);
    expect(() =>
      parseEnvironment('/x/qa.yaml', qaEnvironmentFile('', { verifySeconds: MAX_VERIFY_SECONDS + 1 })),
    ).toThrow(/field 'verifySeconds'/);
  });
});
