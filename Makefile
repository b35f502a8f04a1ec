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
# make lint                                    ansible-lint, production profile, on the roles; the
#                                              roles' variables carry the collection's prefix droot_
#                                              (shared by both roles), not the role's name
.PHONY: demo lint

demo: setup
	examples/demo.sh

lint: setup
	collections=$$(mktemp -d) && mkdir -p "$$collections/ansible_collections/droot" && \
	ln -s "$(CURDIR)" "$$collections/ansible_collections/droot/core" && \
	ANSIBLE_COLLECTIONS_PATH="$$collections" "$${DROOT_VENV:-/opt/droot-venv}/bin/ansible-lint" --offline \
		--profile production --skip-list var-naming[no-role-prefix] roles/; \
	status=$$?; rm -rf "$$collections"; exit $$status

# make bench                                   droot.core against the seed pipeline, as root: JSON,
#                                              table and plots in bench/results (README.md,
#                                              "Benchmarks"); ARGS go to bench/run.py, e.g.
#   make bench ARGS="--quick"                  a few minutes: app image, one round, 1 and 2 hosts
.PHONY: bench

bench: setup
	"$${DROOT_VENV:-/opt/droot-venv}/bin/python" bench/run.py $(ARGS)
