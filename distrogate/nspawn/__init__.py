"""The machinectl / systemd-nspawn suite's library.

- :mod:`.tree`: the container tree (Debian + systemd + dbus + PostgreSQL), built on the host with
  mmdebstrap from the host's apt configuration, packed as a read-only ext4 image, cached in
  ``nspawn_store()/nspawn-<digest>``.
- :mod:`.install`: the tree goes into the guest as a read-only extra disk and is installed under
  ``/var/lib/machines/<name>`` with writable volumes ``/srv/<name>/{data,config,log}`` and a
  locked-down ``/etc/systemd/nspawn/<name>.nspawn``.
- :mod:`.checks`: one function per operation (``check_x(machine, box) -> CheckResult``).
- :mod:`.compare`: candidate against baseline (regression, fails on both, fixed).
- :mod:`.suite`: boot, install, check, compare, for pytest or any other caller.

Policy settings (``suites: {nspawn: {...}}``), all optional: ``start_timeout_s`` (120),
``service_timeout_s`` (120), ``poweroff_timeout_s`` (60), ``journal_timeout_s`` (30),
``checks`` (a subset of check names), ``container: {machine, release, packages}``.
"""
