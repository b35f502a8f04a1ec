# Entry points for developers and CI; tests/run.sh does the work (see README.md, "Tests").
#   make test                                  set this machine up, then run every stage
#   make units|sanity|compat|integration       set up, then one stage; TARGETS and ARGS go to
#                                              its ansible-test (or vermin) command, e.g.
#   make integration TARGETS="droot_run droot_umount"
#   make sanity ARGS="--test pep8"
#   make setup                                 install, start and stage only

TARGETS ?=
ARGS ?=

.PHONY: test setup units sanity compat integration

test:
	tests/run.sh all

setup:
	tests/run.sh setup

units sanity compat integration:
	tests/run.sh $@ $(ARGS) $(TARGETS)

# make demo                                    set up, then build, ship and run an example web app
#                                              on this machine, as root (README.md, "Demo")
# make lint                                    ansible-lint, production profile, on the roles
.PHONY: demo lint

demo: setup
	examples/demo.sh

lint:
	tests/run.sh lint $(ARGS)

# make bench                                   droot.core against the seed pipeline, as root: JSON,
#                                              table and plots in bench/results (README.md,
#                                              "Benchmarks"); ARGS go to bench/run.py, e.g.
#   make bench ARGS="--quick"                  a few minutes: app image, one round, 1 and 2 hosts
.PHONY: bench

bench: setup
	"$${DROOT_VENV:-/opt/droot-venv}/bin/python" bench/run.py $(ARGS)
