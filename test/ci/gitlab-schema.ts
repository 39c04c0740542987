/**
 * The part of GitLab CI's configuration schema the example uses, strictly: a key GitLab does not
 * know (or a value of the wrong shape) fails, as GitLab's own lint would refuse it.
 */
import { z } from 'zod';

const script = z.union([z.string(), z.array(z.string()).min(1)]);
const variables = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  z.union([z.string(), z.number(), z.object({ value: z.string(), description: z.string().optional() }).strict()]),
);
const cacheKey = z.union([
  z.string(),
  z.object({ files: z.array(z.string()).min(1).max(2), prefix: z.string().optional() }).strict(),
]);
const cache = z
  .object({
    key: cacheKey.optional(),
    paths: z.array(z.string()).optional(),
    untracked: z.boolean().optional(),
    policy: z.enum(['pull', 'push', 'pull-push']).optional(),
    when: z.enum(['on_success', 'on_failure', 'always']).optional(),
    fallback_keys: z.array(z.string()).optional(),
    unprotect: z.boolean().optional(),
  })
  .strict();
const image = z.union([
  z.string(),
  z
    .object({ name: z.string(), entrypoint: z.array(z.string()).optional(), pull_policy: z.unknown().optional() })
    .strict(),
]);
const rule = z
  .object({
    if: z.string().optional(),
    changes: z.unknown().optional(),
    exists: z.unknown().optional(),
    when: z.enum(['on_success', 'on_failure', 'always', 'never', 'manual', 'delayed']).optional(),
    allow_failure: z.boolean().optional(),
    variables: variables.optional(),
    needs: z.unknown().optional(),
    start_in: z.string().optional(),
  })
  .strict();
const environment = z.union([
  z.string(),
  z
    .object({
      name: z.string(),
      url: z.string().optional(),
      action: z.enum(['start', 'prepare', 'stop', 'verify', 'access']).optional(),
      on_stop: z.string().optional(),
      auto_stop_in: z.string().optional(),
      deployment_tier: z.enum(['production', 'staging', 'testing', 'development', 'other']).optional(),
      kubernetes: z.unknown().optional(),
    })
    .strict(),
]);
const artifacts = z
  .object({
    paths: z.array(z.string()).optional(),
    exclude: z.array(z.string()).optional(),
    name: z.string().optional(),
    when: z.enum(['on_success', 'on_failure', 'always']).optional(),
    expire_in: z.string().optional(),
    expose_as: z.string().optional(),
    untracked: z.boolean().optional(),
    public: z.boolean().optional(),
    access: z.enum(['all', 'developer', 'none']).optional(),
    reports: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
const duration = z
  .string()
  .regex(
    /^\d+\s*(s|m|h|d|w|seconds?|minutes?|hours?|days?|weeks?)(\s+\d+\s*(s|m|h|d|seconds?|minutes?|hours?))*$/,
    'a GitLab duration (6h, 30 minutes)',
  );

export const gitlabJob = z
  .object({
    stage: z.string().optional(),
    image: image.optional(),
    services: z.array(z.unknown()).optional(),
    script,
    before_script: script.optional(),
    after_script: script.optional(),
    variables: variables.optional(),
    rules: z.array(rule).optional(),
    only: z.unknown().optional(),
    except: z.unknown().optional(),
    when: z.enum(['on_success', 'on_failure', 'always', 'never', 'manual', 'delayed']).optional(),
    environment: environment.optional(),
    resource_group: z.string().optional(),
    timeout: duration.optional(),
    cache: z.union([cache, z.array(cache)]).optional(),
    artifacts: artifacts.optional(),
    allow_failure: z
      .union([
        z.boolean(),
        z.object({ exit_codes: z.union([z.number().int(), z.array(z.number().int()).min(1)]) }).strict(),
      ])
      .optional(),
    needs: z.array(z.unknown()).optional(),
    dependencies: z.array(z.string()).optional(),
    tags: z.array(z.string()).optional(),
    retry: z.unknown().optional(),
    interruptible: z.boolean().optional(),
    parallel: z.unknown().optional(),
    id_tokens: z.record(z.string(), z.unknown()).optional(),
    secrets: z.record(z.string(), z.unknown()).optional(),
    extends: z.union([z.string(), z.array(z.string())]).optional(),
    coverage: z.string().optional(),
  })
  .strict();

/** Keywords allowed at the top level; every other top-level key is a job. */
const globalKeywords = {
  stages: z.array(z.string()).min(1),
  variables,
  default: z.record(z.string(), z.unknown()),
  include: z.unknown(),
  workflow: z.record(z.string(), z.unknown()),
  image,
  services: z.array(z.unknown()),
  cache: z.union([cache, z.array(cache)]),
  before_script: script,
  after_script: script,
} as const;

export const gitlabConfig = z.record(z.string(), z.unknown()).superRefine((config, ctx) => {
  const stages = (config.stages as string[] | undefined) ?? ['build', 'test', 'deploy'];
  for (const [key, value] of Object.entries(config)) {
    const keyword = globalKeywords[key as keyof typeof globalKeywords];
    const parsed = (keyword ?? gitlabJob).safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        ctx.addIssue({ code: 'custom', path: [key, ...issue.path], message: issue.message });
    } else if (
      !keyword &&
      (value as { stage?: string }).stage &&
      !stages.includes((value as { stage: string }).stage)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: [key, 'stage'],
        message: `stage '${(value as { stage: string }).stage}' is not in stages`,
      });
    }
  }
});
