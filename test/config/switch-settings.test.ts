/** The environment fields the switch protocol adds or bounds: the fence lease and the longest verification. */
import { describe, expect, it } from 'vitest';
import { MAX_VERIFY_SECONDS, parseEnvironment } from '../../src/config/environment.ts';

const file = (extra = '', verifySeconds = 3) => `
name: qa
profile: local
region: eu-west-1
hostedZoneId: Z123
recordName: sync.qa.navcloud.test
ttl: 5
template: local-stack
backups: { bucket: navcloud-backups }
smoke: { heartbeatMs: 500 }
verifySeconds: ${verifySeconds}
drainSeconds: 10
jwtSecret: s
${extra}`;

describe('switch settings of an environment file', () => {
  it('fences for 60 seconds unless fenceLeaseSeconds says otherwise', () => {
    expect(parseEnvironment('/x/qa.yaml', file()).fenceLeaseSeconds).toBe(60);
    expect(parseEnvironment('/x/qa.yaml', file('fenceLeaseSeconds: 120')).fenceLeaseSeconds).toBe(120);
  });

  it('refuses a lease too short to copy a last delta under, naming the field', () => {
    expect(() => parseEnvironment('/x/qa.yaml', file('fenceLeaseSeconds: 2'))).toThrow(/\/x\/qa\.yaml: field 'fenceLeaseSeconds'/);
  });

  it('bounds verifySeconds, so that a switch\'s history stays small', () => {
    expect(parseEnvironment('/x/qa.yaml', file('', MAX_VERIFY_SECONDS)).verifySeconds).toBe(MAX_VERIFY_SECONDS);
    expect(() => parseEnvironment('/x/qa.yaml', file('', MAX_VERIFY_SECONDS + 1))).toThrow(/field 'verifySeconds'/);
  });
});
