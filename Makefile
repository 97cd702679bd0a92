# distrogate — `make gate` gates the default pair; `make test` runs every test.
# Both set up what they need on a fresh Debian 12 machine (run as root).

VENV      ?= .venv
PY        := $(VENV)/bin/python
PYTEST    := $(VENV)/bin/pytest
APT_PKGS  := libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev \
             pkg-config qemu-system-x86 qemu-utils ovmf mmdebstrap e2fsprogs dosfstools mtools \
             fdisk iproute2 iputils-ping python3-venv python3-dev gcc make util-linux \
             locales nftables tcpdump chromium openssl rpm createrepo-c gnupg \
             postgresql pgbackrest
PYTEST_WORKERS ?= 2

.PHONY: setup system-deps python-env gate test nightly lint type unit vm bench clean-lab

setup: system-deps python-env

system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

python-env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	/usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

## gate: the gate on the built-in default pair (candidate trixie vs promoted bookworm).
## A verdict (0 promote, 1 reject, 2 inconclusive) is the gate doing its job, so make reports
## no error for it; bad input (3), a lab failure (4) and an interrupt (130) stay errors.
gate: setup
	@$(VENV)/bin/distrogate gate --candidate candidate --baseline promoted; rc=$$?; \
	  if [ $$rc -gt 2 ]; then exit $$rc; fi

## test: lint, types, unit tests, then the VM tests (harness and suites) on real VMs.
## The suites run under a fleet's policy (examples/fleet-policy.yaml: the C and en_US locales
## block), so that they pass on the default pair; that the packaged policy rejects the default
## pair, naming every changed locale, is itself a test (tests/test_gate_verdict.py; nightly,
## with ~500 locales; make test checks two changed locales and a waiver).
test: setup lint type
	$(VENV)/bin/distrogate lab gc
	$(PYTEST) -n $(PYTEST_WORKERS) -p no:cacheprovider -rfEsx --durations=40 -m "not nightly" \
	  --policy examples/fleet-policy.yaml tests suites

## nightly: what `make test` leaves out: the fio suite on the default pair, the clean and A/A
## fio gates (make test's time budget; their fio load slows the other worker's guests), `make
## gate`'s own collation verdict under the packaged policy (every shipped locale), and the
## roll-forward VM tests (every scenario twice, the seed incident, an interrupt, the cluster
## and the IPsec mesh: 5-30 min each here, past make test's 45 minutes).
nightly: setup
	$(PYTEST) -p no:cacheprovider -rfEsx -m nightly --policy examples/fleet-policy.yaml tests suites

lint: python-env
	$(VENV)/bin/ruff check distrogate fixtures suites tests bench conftest.py

type: python-env
	$(VENV)/bin/mypy

unit: python-env
	$(PYTEST) -p no:cacheprovider -m "not vm" tests

vm: setup
	$(PYTEST) -n $(PYTEST_WORKERS) -p no:cacheprovider -m vm --policy examples/fleet-policy.yaml \
	  tests suites

## bench: speed and memory targets, written as JSON into bench/results/ (never timed tests).
## The suites' own benches (bench_collation, bench_ipsec, bench_dnf, bench_fio) take longer and
## are run one by one; each says its options in --help.
bench: setup
	$(PY) bench/bench_lab.py
	$(PY) bench/bench_warm.py

clean-lab: python-env
	$(VENV)/bin/distrogate lab gc
