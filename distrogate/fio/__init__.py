"""The fio suite's library: jobs and metrics, settings, the data disk, fio in the guest,
interleaved runs, judging with the numeric rule, statistical power, plots."""
