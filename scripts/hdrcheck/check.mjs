// check.mjs decodes an HdrHistogram interval log with hdr-histogram-js (the
// HdrHistogram project's JavaScript implementation) and prints, as JSON,
// every interval histogram's tag, time range, count and percentiles. surge's
// tests compare them with what surge computed.
//
// Usage: node check.mjs LOGFILE
import { readFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";

const file = process.argv[2];
if (!file) {
  console.error("usage: node check.mjs LOGFILE");
  process.exit(2);
}
const reader = new hdr.HistogramLogReader(readFileSync(file, "utf8"), 64, false);
const out = [];
for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) {
  out.push({
    tag: h.tag === undefined || h.tag === "NO TAG" ? "" : h.tag,
    start_ms: h.startTimeStampMsec,
    end_ms: h.endTimeStampMsec,
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p95: h.getValueAtPercentile(95),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  });
}
if (out.length === 0) {
  console.error(`${file}: no interval histograms decoded`);
  process.exit(1);
}
process.stdout.write(JSON.stringify(out) + "\n");
