"""`make bench`: one table of ratios, each measured side by side in the same run.

Every row divides two timings (or losses) taken in the same process run, A and B
interleaved (A B A B ...) and reduced with medians, so a shared, noisy machine
moves both sides together. `python -m bench.run [--quick|--smoke] [--out FILE]`.
"""
