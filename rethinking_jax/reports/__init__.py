"""Run outputs: metrics.jsonl, summary.json, report.md, curves.png."""
