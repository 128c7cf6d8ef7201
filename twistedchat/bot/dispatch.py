"""Running a bot's handlers: which commands and handlers an incoming line or event calls, and how."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from twistedchat.bot.handlers import (
    EXAMPLES_ATTRIBUTE,
    HANDLERS_ATTRIBUTE,
    Event,
    find_matches,
    split_command,
)
from twistedchat.bot.permissions import RATE_ATTRIBUTE, REQUIRE_ATTRIBUTE, allowed

if TYPE_CHECKING:
    from twistedchat.bot.core import Bot


class Command:
    """A registered command: its names, handler and help."""

    def __init__(self, names: tuple[str, ...], handler: Callable[[Event], Any]) -> None:
        self.name = names[0]
        self.aliases = names[1:]
        self.handler = handler
        doc = inspect.getdoc(handler) or ""
        self.summary = doc.strip().splitlines()[0] if doc.strip() else ""
        self.examples: list[str] = list(getattr(handler, EXAMPLES_ATTRIBUTE, []))


class Dispatcher:
    """One bot's commands, message and event handlers and jobs, and the running of them."""

    def __init__(self, bot: Bot, base: type) -> None:
        """Collect the handlers marked on ``bot``'s methods (none may hide one of ``base``'s)."""
        self.bot = bot
        self._commands: dict[str, Command] = {}
        self._message_handlers: list[tuple[re.Pattern[str] | None, Callable[[Event], Any]]] = []
        self._event_handlers: dict[str, list[Callable[[Event], Any]]] = {}
        self.jobs: list[tuple[float, bool, Callable[[], Any]]] = []
        names = dict.fromkeys(name for cls in reversed(type(bot).__mro__) for name in vars(cls))
        for name in names:  # in definition order, base classes first
            marks = getattr(inspect.getattr_static(bot, name), HANDLERS_ATTRIBUTE, ())
            if marks and hasattr(base, name):
                raise TypeError(f"{type(bot).__name__}.{name} hides {base.__name__}.{name}; give "
                                f"the handler another method name (the command name can stay)")
            if not marks:
                continue
            method = getattr(bot, name)
            for kind, argument in marks:
                if kind == "command":
                    spec = Command(argument, method)
                    for one in argument:
                        self._commands[one] = spec
                elif kind == "message":
                    self._message_handlers.append((argument, method))
                elif kind == "event":
                    self._event_handlers.setdefault(argument, []).append(method)
                elif kind == "every":
                    self.jobs.append((argument[0], argument[1], method))

    def _account(self, nick: str, tags: dict[str, str]) -> str | None:
        if "account" in tags:
            return tags["account"] or None
        person = self.bot.state.person(nick)
        return person.account if person is not None else None

    def dispatch_message(self, user: str, channel: str | None, text: str, action: bool,
                         tags: dict[str, str]) -> None:
        """A PRIVMSG or action from ``user``: run the matching command and message handlers."""
        nick = user.split("!", 1)[0]
        account = self._account(nick, tags)

        def event(**extra: Any) -> Event:
            return Event(self.bot, nick, user, channel, text, action=action, tags=dict(tags),
                         account=account, **extra)

        found = None
        if not action:
            found = split_command(text, prefix=self.bot.prefix, nick=self.bot.nick,
                                  private=channel is None, fold=self.bot.state.fold)
        name = found[0] if found else None
        known = name in self._commands or (name == "help" and self.bot.help_command)
        if found is not None and known:
            spec = self._commands.get(found[0])
            if spec is not None:
                self._invoke(spec.handler, event(command=spec.name, args=found[1]),
                             as_command=True)
            else:
                self._run(self._help, event(command="help", args=found[1]))
        for pattern, handler in self._message_handlers:
            matches = find_matches(pattern, text) if pattern is not None else []
            if pattern is None or matches:
                extra: dict[str, Any] = {"match": matches[0] if matches else None,
                                         "matches": matches}
                if found is not None and known:
                    spec = self._commands.get(found[0])
                    extra.update(command=spec.name if spec else name, args=found[1])
                self._invoke(handler, event(**extra))

    def dispatch_join(self, nick: str, channel: str, user: str | None = None) -> None:
        """Someone else joined ``channel``: run the ``@on_join`` handlers."""
        self.dispatch_event("join", user or nick, channel)

    def dispatch_event(self, kind: str, source: str, channel: str | None, **fields: Any) -> None:
        """Run the ``@on_<kind>`` handlers for an event from ``source`` (``nick!user@host``)."""
        handlers = self._event_handlers.get(kind, ())
        if not handlers:
            return
        nick = source.split("!", 1)[0]
        tags = fields.pop("tags", {})
        for handler in handlers:
            self._invoke(handler, Event(self.bot, nick, source, channel, tags=dict(tags),
                                        account=self._account(nick, tags), **fields))

    def _invoke(self, handler: Callable[[Event], Any], event: Event,
                as_command: bool = False) -> None:
        """Check ``@require`` and ``@rate``, then run the handler."""
        requirement = getattr(handler, REQUIRE_ATTRIBUTE, None)
        if requirement is not None and not allowed(requirement, event):
            if as_command:  # someone asked for it: say why not; other handlers pass quietly
                self.bot.logger.info("{nick} may not use {handler}", nick=event.user,
                                 handler=handler.__name__)
                self.bot.refuse(event, requirement)
            return
        limit = getattr(handler, RATE_ATTRIBUTE, None)
        if limit is not None:
            bot = self.bot
            wait = bot.rates.check(handler.__name__, limit, bot.state.fold(event.nick),
                                   bot.state.fold(event.channel) if event.channel else None,
                                   bot.clock.seconds())
            if wait > 0:
                if bot.rates.first_refusal(handler.__name__, bot.state.fold(event.nick)):
                    bot.slow_down(event if as_command else replace(event, command=None), wait)
                return
        self._run(handler, event)

    def _help(self, event: Event) -> str:
        """List the commands, or explain one: ``help [COMMAND]``."""
        prefix = self.bot.prefix
        wanted = event.argv[0].lstrip(prefix).lower() if event.argv else ""
        if not wanted:
            names = sorted({spec.name for spec in self._commands.values()})
            listed = ", ".join(prefix + name for name in names) or "none"
            return f"Commands: {listed}. Say {prefix}help COMMAND for more."
        spec = self._commands.get(wanted)
        if spec is None:
            return f"No command {prefix}{wanted}. Say {prefix}help for the list."
        parts = [f"{prefix}{spec.name}: {spec.summary or 'no description'}"]
        if spec.aliases:
            parts.append("Also: " + ", ".join(prefix + alias for alias in spec.aliases) + ".")
        if spec.examples:
            parts.append("Example: " + " | ".join(spec.examples))
        return " ".join(parts)

    def _run(self, handler: Callable[[Event], Any], event: Event) -> defer.Deferred[Any]:
        """Call a handler; a string it returns (now or later) is the reply. Errors are logged."""
        result = defer.maybeDeferred(handler, event)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if inspect.iscoroutine(value) else value)

        def answer(value: Any) -> None:
            if isinstance(value, str) and value:
                event.reply(value)

        def failed(failure: Failure) -> None:
            self.bot.logger.failure(
                "{handler} failed on {text!r} from {user} in {where}", failure,
                handler=getattr(handler, "__name__", handler), text=event.text,
                user=event.user, where=event.channel or "private")
            if self.bot.error_reply:
                event.reply(f"{event.nick}: {self.bot.error_reply}")

        return result.addCallback(answer).addErrback(failed)

    def run_hook(self, hook: Callable[[], Any]) -> None:
        """Call a life-cycle hook (it may return a Deferred or coroutine); errors are logged."""
        result = defer.maybeDeferred(hook)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if inspect.iscoroutine(value) else value)
        result.addErrback(lambda failure: self.bot.logger.failure(
            "{hook} failed", failure, hook=hook.__name__))
