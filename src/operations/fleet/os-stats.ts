/**
 * OS figures of a node's server process, gathered by one POSIX shell script that every platform
 * runs the way it runs any `fleet exec` command: locally NODE_PID names the process, on an
 * instance it is the navcloud-sync unit's main process.
 */
export interface OsStats {
  /** Share of one CPU the process used over a one-second sample. */
  cpuPercent: number;
  rssBytes: number;
  openFiles: number;
  /** The machine's 1, 5 and 15 minute load averages. */
  load: [number, number, number];
}

export const OS_STATS_SCRIPT = [
  'pid="${NODE_PID:-$(systemctl show -p MainPID --value navcloud-sync 2>/dev/null)}"',
  '[ -n "$pid" ] && [ "$pid" != 0 ] && [ -r "/proc/$pid/stat" ] || { echo "navcloud-sync is not running" >&2; exit 3; }',
  // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
  "ticks() { sed 's/.*) //' \"/proc/$pid/stat\" | awk '{print $12 + $13}'; }",
  'start=$(date +%s%N); t1=$(ticks); sleep 1; t2=$(ticks); end=$(date +%s%N)',
  'echo "clk=$(getconf CLK_TCK) ticks=$((t2 - t1)) ns=$((end - start))' +
    ' rss_kb=$(awk \'/^VmRSS:/{print $2}\' "/proc/$pid/status")' +
    ' fds=$(ls "/proc/$pid/fd" | wc -l)' +
    ' load=$(cut -d" " -f1-3 /proc/loadavg | tr " " ,)"',
].join('\n');

/** The script's one line of output as figures; undefined when it is not that line. */
export function parseOsStats(output: string): OsStats | undefined {
  const fields = new Map(
    output
      .trim()
      .split(/\s+/)
      .map((pair) => {
        const eq = pair.indexOf('=');
        return [pair.slice(0, eq), pair.slice(eq + 1)] as const;
      }),
  );
  const number = (key: string) => {
    const value = Number(fields.get(key));
    return Number.isFinite(value) && fields.get(key) !== '' ? value : undefined;
  };
  const [clk, ticks, ns, rssKb, fds] = ['clk', 'ticks', 'ns', 'rss_kb', 'fds'].map(number);
  const load = (fields.get('load') ?? '').split(',').map(Number);
  if (
    !clk ||
    ticks === undefined ||
    !ns ||
    rssKb === undefined ||
    fds === undefined ||
    load.length !== 3 ||
    load.some(Number.isNaN)
  )
    return undefined;
  return {
    cpuPercent: Math.round((ticks / clk / (ns / 1e9)) * 1000) / 10,
    rssBytes: rssKb * 1024,
    openFiles: fds,
    load: load as [number, number, number],
  };
}
