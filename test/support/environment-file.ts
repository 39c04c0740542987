/**
 * The text of a valid environment file of `qa` on the local profile, with `extra` YAML after its
 * fields. verifySeconds is an option rather than an extra line: YAML refuses a key given twice.
 */
export function qaEnvironmentFile(extra = '', { verifySeconds = 3 }: { verifySeconds?: number } = {}): string {
  return `name: qa
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
jwtSecret: env:QA_SECRET
${extra}`;
}
