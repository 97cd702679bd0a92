"""The IPsec suite's library: settings, IKE implementation detection, configuration as a
management agent writes it (strongSwan swanctl, libreswan), a throwaway CA, parsers of the
guest tools' output, a kernel-only SA pair, the steps run on each pair of nodes and the
judging of the three pairs (candidate↔candidate, baseline↔baseline, candidate↔baseline)."""
