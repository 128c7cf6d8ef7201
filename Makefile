# One command sets up and runs the daemon (make run); one sets up and runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 1234
STAMP := $(VENV)/.installed

.PHONY: run client bot screenshot web-screenshots test fuzz lint bench bench-tls bench-quick bench-client bench-pypy bench-cluster profile clean system-deps

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[client,test]'
	# An editable install hides twisted/plugins/ from Twisted's plugin search; putting the checkout
	# itself on sys.path (a .pth file) lets twistd find the chat plugin from any directory.
	$(BIN)/python -c 'import os, sysconfig; open(os.path.join(sysconfig.get_path("purelib"), "twistedchat-checkout.pth"), "w").write(os.getcwd() + "\n")'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

run: $(STAMP)
	$(BIN)/twistd -n chat --port $(PORT)

client: $(STAMP) system-deps
	$(BIN)/twistedchat-client

# The dice bot joins #lobby on the local daemon (start it with make run first).
bot: $(STAMP)
	$(BIN)/twistd -n --pidfile= chatbot --server tcp:localhost:$(PORT) --nick dicebot --channel '#lobby' examples/dicebot.py

# docs/screenshot.png (light) and docs/screenshot-dark.png: the real window under Xvfb with a short
# scripted conversation.
screenshot: $(STAMP) system-deps
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python scripts/screenshot.py docs/screenshot.png
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python scripts/screenshot.py --theme dark \
		docs/screenshot-dark.png

# docs/web-*.png: the web client in headless chromium, light, dark and phone-sized (a browser test).
web-screenshots: $(STAMP) system-deps
	UPDATE_SCREENSHOTS=1 QT_QPA_PLATFORM=offscreen QT_API=pyqt6 $(BIN)/python -m pytest -q \
		tests/test_web_browser.py tests/test_web_people.py -k screenshots

test: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen QT_API=pyqt6 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	@! git grep -nE '^(<<<<<<<|>>>>>>>)( |$$)' -- . ':!*.png' || { echo 'lint: merge conflict markers left in the files above'; exit 1; }
	$(BIN)/mypy

# The stateful fuzz of the line pipeline (tests/test_fuzz_pipeline.py), far longer than in make test,
# shrinking what it finds. FUZZ_EXAMPLES=N FUZZ_STEPS=N make fuzz for another budget.
FUZZ_EXAMPLES ?= 5000
FUZZ_STEPS ?= 80
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_STEPS=$(FUZZ_STEPS) FUZZ_SHRINK=1 QT_QPA_PLATFORM=offscreen QT_API=pyqt6 \
		$(BIN)/python -m pytest -p no:timeout -q tests/test_fuzz_pipeline.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The same loads over TLS (twistedchat's ssl: listener beside ngircd's [SSL] one); ~20 minutes.
bench-tls: $(STAMP)
	$(BIN)/python -m bench.run --tls

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick --no-write

# The daemon under PyPy beside CPython and ngircd, at 1,000 and 10,000 clients; tables in bench/PYPY.md.
.venv-pypy/bin/twistd:
	bash scripts/pypy-venv.sh

bench-pypy: $(STAMP) .venv-pypy/bin/twistd
	$(BIN)/python -m bench.run --servers twistedchat,twistedchat-pypy,ngircd --sizes 1000,10000 \
		--reps 1 --reps-large 1 --readme bench/PYPY.md --json bench/results-pypy.json

bench-client: $(STAMP)
	$(BIN)/python -m bench.client_burst

# One process vs a 2-node network on Redis vs --workers 2 (issue 14); ~5 minutes, figures in
# bench/README.md and bench/results-cluster.json; then what the single ordered stream costs.
bench-cluster: $(STAMP)
	$(BIN)/python -m bench.cluster --write
	$(BIN)/python -m bench.cluster_apply
	$(BIN)/python -m bench.cluster_apply --redis
	$(BIN)/python -m bench.cluster_apply --redis --targets 1,2,4,8 --per-batch 1,10
	$(BIN)/python -m bench.cluster_apply --bystander --members 10,1000 --per-batch 1,10

profile: $(STAMP)
	$(BIN)/python -m pip install -q py-spy
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .venv-pypy build *.egg-info
