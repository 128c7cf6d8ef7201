# One command sets up and runs the daemon (make run); one sets up and runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 1234
STAMP := $(VENV)/.installed

.PHONY: run client bot screenshot test lint bench bench-quick bench-client profile clean system-deps

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
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

# docs/screenshot.png: the real window under Xvfb with a short scripted conversation.
screenshot: $(STAMP) system-deps
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python scripts/screenshot.py docs/screenshot.png

test: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen QT_API=pyqt6 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick --no-write

bench-client: $(STAMP)
	$(BIN)/python -m bench.client_burst

profile: $(STAMP)
	$(BIN)/python -m pip install -q py-spy
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) build *.egg-info
