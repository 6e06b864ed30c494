# SPDX-License-Identifier: GPL-3.0-or-later
# Conductor: `make demo` sets up and runs the example workflow, `make test` sets up and runs every test.
# Both need root on a Debian or Ubuntu machine; they install what they need (apt packages, .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := debootstrap debian-archive-keyring iptables iproute2 iputils-ping python3-venv util-linux procps perl-base lua5.3 lua-posix python3-iptables python3-nftables nftables python3-seccomp libseccomp2 xfsprogs zstd
# what the registry tests start and fill the registry with (other tools than Conductor), openssl for a lab CA, and
# ufw (the firewall tests run it in namespaces of their own; installing it leaves it off)
TEST_APT_PACKAGES := docker-registry skopeo umoci podman buildah busybox-static apache2-utils openssl ufw
COLLECTION := .build/ansible_collections/cs695/conductor
TEST_CACHE ?= $(CURDIR)/.cache/test-root
TEST_NETNS := cdt-ansible-$(shell echo $$PPID)
export CONDUCTOR_TEST_CACHE := $(TEST_CACHE)

# The collection as Ansible looks for it (ansible.cfg names this folder), linked to this checkout: relative,
# so a moved or copied checkout finds itself.
COLLECTIONS := .build/collections
CHECKOUT_LINK := $(COLLECTIONS)/ansible_collections/cs695/conductor

.PHONY: setup demo test fast ruff unit integration reliability ansible-integration quality sanity lint docs changelog collection clean bench
setup: .build/apt.stamp $(VENV)/.stamp $(CHECKOUT_LINK)

.build/apt.stamp:
	@mkdir -p .build
	@missing=$$(for p in $(APT_PACKAGES) $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@touch $@

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@# the venv's conductor: this venv's interpreter by absolute path (no PATH lookup, no pyenv shim), and no
	@# console-script entry point (those import re)
	printf '#!%s -I\nimport sys\nsys.path.insert(0, %s)\nfrom conductor_cli import main\nsys.exit(main())\n' \
	  "$(CURDIR)/$(VENV)/bin/python" "'$(CURDIR)/bin'" > $(VENV)/bin/conductor && chmod 755 $(VENV)/bin/conductor
	@touch $@
	@$(PY) -m compileall -q bin plugins  # cached bytecode, even where PYTHONDONTWRITEBYTECODE is set

$(CHECKOUT_LINK):
	@mkdir -p $(dir $@) && ln -sfn ../../../.. $@

demo: setup
	$(VENV)/bin/ansible-playbook playbooks/demo.yml
	$(PY) bin/conductor images
	$(PY) bin/conductor ps

test: setup fast integration reliability ansible-integration quality collection

# the modules the tests run keep their compiled imports here, not in the host's /var/cache/conductor
export CONDUCTOR_BYTECODE_CACHE = $(CURDIR)/.cache/bytecode

# the fast lane: seconds, no root, no network (the engine's layers are a unit test)
fast: unit ruff

unit:
	$(PY) -m pytest -q tests/unit

integration:
	$(PY) -m pytest -q --durations=15 tests/root

# quick profile; CONDUCTOR_RELIABILITY=long make reliability for 100+ faults
reliability:
	$(PY) -m pytest -q -rA tests/reliability

# ansible-test needs the collection at ansible_collections/<namespace>/<name>: copy the tree there, as a
# git repository of its own (ansible-test lists files with git, and .build is ignored by ours).
$(COLLECTION): FORCE
	@rm -rf $(COLLECTION) && mkdir -p $(COLLECTION)
	@git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C $(COLLECTION)
	@cd $(COLLECTION) && git init -q && git add -A
FORCE:

ansible-integration: $(COLLECTION)
	$(PY) tests/helpers.py
	printf 'conductor_test_cache: %s\n' "$(TEST_CACHE)" > $(COLLECTION)/tests/integration/integration_config.yml
	@# a private network namespace with an uplink: conductor_network never touches the machine's network
	ip netns add $(TEST_NETNS) && ip -n $(TEST_NETNS) link set lo up && \
	  ip -n $(TEST_NETNS) link add up0 type veth peer name up1 && \
	  ip -n $(TEST_NETNS) addr add 203.0.113.2/24 dev up0 && ip -n $(TEST_NETNS) link set up0 up && \
	  ip -n $(TEST_NETNS) link set up1 up && ip -n $(TEST_NETNS) route add default via 203.0.113.1
	@# ansible-test hands its modules no CONDUCTOR_BYTECODE_CACHE: they keep their code in the host's cache, which
	@# goes again when this made it
	[ -e /var/cache/conductor ]; made_cache=$$?; \
	cd $(COLLECTION) && PATH=$(CURDIR)/$(VENV)/bin:$$PATH nsenter --net=/run/netns/$(TEST_NETNS) -- \
	  ansible-test integration --local --allow-destructive --python-interpreter $(CURDIR)/$(PY) -v; \
	  status=$$?; ip netns del $(TEST_NETNS); [ $$made_cache = 0 ] || rm -rf /var/cache/conductor; exit $$status

quality: ruff sanity lint docs changelog

ruff:
	$(VENV)/bin/ruff check .

# ansible-test makes a venv per sanity test and bootstraps pip in it from a host this network cannot
# reach: tests/get_pip.py, put where ansible-test keeps its cached copy, does the same from PyPI.
GET_PIP := $(HOME)/.ansible/test/cache/get_pip_24_2.py
sanity: $(COLLECTION)
	@mkdir -p $(dir $(GET_PIP)) && [ -f $(GET_PIP) ] || cp tests/get_pip.py $(GET_PIP)
	cd $(COLLECTION) && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-test sanity --venv \
	  --python $$($(CURDIR)/$(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')

lint: $(COLLECTION)
	cd $(COLLECTION) && ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	  ansible-lint --profile production --offline roles playbooks

docs: $(COLLECTION)
	@for module in $$(ls plugins/modules | sed -n 's/\.py$$//p'); do \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build $(VENV)/bin/ansible-doc cs695.conductor.$$module > /dev/null || exit 1; \
	  echo "ansible-doc cs695.conductor.$$module: ok"; done
	@for type in connection inventory; do \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build $(VENV)/bin/ansible-doc -t $$type cs695.conductor.conductor > /dev/null || exit 1; \
	  echo "ansible-doc -t $$type cs695.conductor.conductor: ok"; done

changelog:
	$(VENV)/bin/antsibull-changelog lint

collection: $(COLLECTION)
	cd $(COLLECTION) && ../../../../$(VENV)/bin/ansible-galaxy collection build --force --output-path ../../.. 2>&1 | tee ../../../galaxy-build.log
	@! grep -i warning .build/galaxy-build.log

clean:
	rm -rf .build $(VENV)

# BENCH_PODMAN=1: podman and runc from Debian's packages first, so the side-by-side rows are never skipped
BENCH_APT_PACKAGES = podman runc

bench: setup
	@if [ -n "$(BENCH_PODMAN)" ]; then \
	  missing=$$(for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then echo "Installing $$missing"; apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || exit 1; fi; fi
	cd bench && for script in build.py ship.py ship_hosts.py registry.py classroom_registry.py run.py network.py scale.py firewall.py ansible.py connection.py classroom.py overlay.py stats.py; do ../$(PY) $$script || exit 1; done
