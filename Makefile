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
