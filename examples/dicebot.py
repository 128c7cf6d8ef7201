"""Dice bot: ``!roll 2d6`` (or ``roll 2d6`` in private) rolls dice and says the result.

    twistd -n --pidfile= chatbot --server tcp:localhost:1234 --nick dicebot --channel '#lobby' examples/dicebot.py

or straight from Python (server endpoint optional)::

    python examples/dicebot.py tcp:localhost:1234
"""

import random
import re
import sys

from twistedchat.bot import Bot, command, run

DICE = re.compile(r"^(\d*)d(\d+)$")


class DiceBot(Bot):
    """Rolls dice."""

    nickname = "dicebot"
    dice = random.Random()

    @command("roll")
    def roll(self, event):
        """Roll dice: !roll NdM (1d6 without one)."""
        match = DICE.match(event.args or "1d6")
        if not match:
            return f"{event.nick}: usage: !roll NdM, for example !roll 2d6"
        count, sides = int(match.group(1) or 1), int(match.group(2))
        if not (1 <= count <= 100 and 2 <= sides <= 1000):
            return f"{event.nick}: between 1 and 100 dice of 2 to 1000 sides, please"
        rolls = [self.dice.randint(1, sides) for _ in range(count)]
        return f"{event.nick} rolled {' + '.join(map(str, rolls))} = {sum(rolls)}"


if __name__ == "__main__":
    run(DiceBot(), *sys.argv[1:2])
