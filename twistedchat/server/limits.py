"""The protocol limits and mode letters the server enforces and announces in ISUPPORT."""

from __future__ import annotations

#: Lengths in bytes of UTF-8, small enough that the longest relayed or echoed line fits in 512
#: (``:nick!~user@host TOPIC #channel :`` alone can take about 120 bytes).
TOPICLEN = 300
KICKLEN = 300
AWAYLEN = 300
REALLEN = 100
KEYLEN = 32
#: Longest ban mask kept (``nick!user@host`` is at most about 110 bytes here).
BANLEN = 150
CHANLIMIT = 100
#: Most entries in each channel list (+b, +e and +I each), ISUPPORT ``MAXLIST``.
MAXLIST = 100
MAXTARGETS = 4
MODES_PER_COMMAND = 6
WHOWAS_KEEP = 1000
#: Most nicknames one connection may MONITOR (ISUPPORT ``MONITOR``).
MONITOR_LIMIT = 100
#: ``draft/metadata-2`` limits (in the capability's value): keys per user or channel,
#: subscriptions per connection, bytes of one value, and bytes of a key (a longer key is invalid).
METADATA_MAX_KEYS = 20
METADATA_MAX_SUBS = 50
METADATA_MAX_VALUE_BYTES = 300
METADATA_MAX_KEY_BYTES = 64
#: Most targets one owner keeps a read marker for; past it the oldest is forgotten.
READ_MARKERS_KEEP = 1000

#: Channel modes by ISUPPORT CHANMODES type: A (list), B (always a parameter), C (parameter when
#: set), D (flag). Membership prefixes are separate (PREFIX).
LIST_MODES = "beI"
PARAM_MODES = "k"
SET_PARAM_MODES = "l"
FLAG_MODES = "imnst"
PREFIX_MODES = "ov"
PREFIX_SYMBOLS = {"o": "@", "v": "+"}
#: User modes: B (a bot), i (invisible), o (IRC operator), w (receives WALLOPS).
USER_MODES = "Biow"
#: The extended ban that mutes instead of keeping out (``m:nick!user@host``, as Ergo spells it).
MUTE_PREFIX = "m:"

#: A member's prefix modes (as kept in ``Channel.members``) -> its symbols, all or the highest.
MULTI_PREFIX: dict[str, str] = {"": "", "o": "@", "v": "+", "ov": "@+"}
HIGHEST_PREFIX: dict[str, str] = {modes: symbols[:1] for modes, symbols in MULTI_PREFIX.items()}
