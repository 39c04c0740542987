# The Switchyard worker as a container: `switchyard worker` with its probe on port 9464
# (/healthz for the health check, /metrics for Prometheus). Run by infra/worker-service.yaml.
# test/production/image.test.ts checks this file (hadolint, its stages, a production install
# of what it copies, and the worker started as its ENTRYPOINT and CMD say).
ARG NODE_IMAGE=node:24.19.0-bookworm-slim

# ---- production dependencies only (tsx is one: the worker runs TypeScript without a build).
# better-sqlite3 13 ships its Node-API binaries, so nothing is compiled; the optional 12.x is only
# loaded on Node 20, and npm leaves it out where it can neither download nor build it.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- the worker
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    LOG_FORMAT=json \
    SWITCHYARD_PROBE_PORT=9464 \
    SWITCHYARD_PROBE_HOST=0.0.0.0
WORKDIR /app
# Owned by root and only read by the worker, which runs as the image's unprivileged `node` user
# (uid 1000), named by number so runtimes that require a non-root uid can check it.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY activities ./activities
COPY workflows ./workflows
COPY server ./server
COPY infra ./infra
USER 1000:1000
EXPOSE 9464
# Healthy while the worker runs, both pollers poll and Temporal answers (workflow bundling takes a while at start).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.SWITCHYARD_PROBE_PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["worker"]
