"""The Lua scripts that change the network's shared state in Redis, each one atomic.

Every key sits under one prefix (``ARGV[1]``, ``twistedchat:<network>:``):

- ``epoch``: a random value set by the first node; a Redis that lost its data has none, so every
  node sees that and registers its users again.
- ``nodes`` (hash node -> incarnation) and ``hb`` (sorted set node -> last heartbeat, Redis time in
  ms): who is alive. A write from a node whose incarnation is not the one in ``nodes`` is refused
  (fenced): a node declared dead cannot write.
- ``nicks`` (hash folded nick -> node), ``ns`` (hash folded nick -> its user's signon time) and
  ``nn:<node>`` (the set of one node's nicks): nicks are unique network-wide. When nodes claim
  their users' nicks again (Redis lost its data, or a node was fenced) two may claim one nick:
  the older signon keeps it, as InspIRCd settles a collision, and the node that loses it is told
  by an ``R`` event.
- ``seq``, ``log`` (a stream capped at :data:`LOG_KEEP` entries, id ``0-<seq>``) and the pub/sub
  channel ``events``: every batch of events gets the next sequence number, is kept in the stream
  and published as ``<epoch> <seq> <payload>``; a node that sees a gap reads it back with XRANGE.
- ``chans`` (hash folded channel -> creation time), ``cn:<channel>`` (the nodes with local
  members in it) and ``nc:<node>`` (the channels a node has local members in): who created a
  channel. A JOIN that would create a channel the node does not know waits for CHANNEL_CLAIM:
  only the first claim creates it (its user gets ``@``); the others join it without. The claim
  goes when the last node with members in the channel leaves it (or is reaped).
- ``is:<node>`` (a node's inbox sequence), ``ie:<node>`` (its epoch), the pub/sub channel
  ``inbox:<node>``, and ``ilog`` (one stream capped at :data:`INBOX_LOG_KEEP` entries, id
  ``0-<n>`` from the counter ``ilseq``, shared by every inbox): the channel messages for channels
  with members on a node and the private messages for its users, decoded by that node alone.
  SEND stores a turn's inbox batches once, in one ``ilog`` entry (its targets with their
  sequence numbers, and each distinct payload once), and publishes each batch to its node with
  the entry's number; a node that sees a gap in its sequence reads ``ilog`` back from the entry
  of the last batch it applied and keeps the batches addressed to it. ``is:``/``ie:`` go with
  the node when it leaves or is reaped (a node that comes back gets a new epoch).
- ``reaping``: dead nodes whose nicks and channels are still being freed, a chunk per heartbeat.
- ``runid``: the run id of the Redis process the nodes last registered in. A Redis that restarted
  with its data kept (persistence, a failover to a replica) has a new one: every node lost its
  connection at the same time, so the first node to register again gives every node a fresh
  heartbeat instead of letting the outage pass for their death. Its sequence numbers may come
  from a snapshot older than what the nodes saw, so they jump by :data:`SEQUENCE_JUMP` (the
  nodes find a gap no stream can fill and resynchronise instead of ignoring new batches).
"""

from __future__ import annotations

from twistedchat.cluster.resp import Script

#: Batches kept in the stream for receivers that missed some (about a second at 500 batches/s).
LOG_KEEP = 2000
#: Turns kept in the inbox log that every node's inbox shares: one entry per SEND call with
#: inbox batches, whatever the number of target nodes. A node's inbox gets at most one batch per
#: turn of each other node (two when a turn mixes events between its lines), so on a network of
#: N nodes in busy channels the log holds ~20,000 / N turns of each node: as long as a per-node
#: stream of 2,000 batches (what each inbox kept before) up to N = 10 nodes, and at least as long
#: as the events' log (:data:`LOG_KEEP`) up to ten times that.
INBOX_LOG_KEEP = 20_000
#: Target nodes named in one inbox message at most: building the message once saves copying the
#: payload for each (~2.5 µs of Redis per target for ten lines), and each name (~45 bytes) goes
#: to every node the message reaches, so the bytes stay linear in the nodes a channel spans.
SHARED_MESSAGE_TARGETS = 8
#: How far sequence numbers jump when Redis restarted with its data (past any batch a snapshot
#: may have lost).
SEQUENCE_JUMP = 10**9

_PRELUDE = """
local p = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function emit(payload)
  local epoch = redis.call('GET', p .. 'epoch')
  local seq = redis.call('INCR', p .. 'seq')
  redis.call('XADD', p .. 'log', 'MAXLEN', '~', @KEEP@, '0-' .. seq, 'm', payload)
  redis.call('PUBLISH', p .. 'events', epoch .. ' ' .. seq .. ' ' .. payload)
  return seq
end
local function drop_inbox(node)
  -- (``inbox:<node>``: the stream of its own each inbox had before the shared log, if any.)
  redis.call('DEL', p .. 'is:' .. node, p .. 'ie:' .. node, p .. 'inbox:' .. node)
end
local function fenced(node, incarnation)
  return redis.call('HGET', p .. 'nodes', node) ~= incarnation
end
local function leave_channel(node, channel)
  redis.call('SREM', p .. 'nc:' .. node, channel)
  redis.call('SREM', p .. 'cn:' .. channel, node)
  if redis.call('SCARD', p .. 'cn:' .. channel) == 0 then redis.call('HDEL', p .. 'chans', channel) end
end
local function free_claims(node, count)
  local nicks = redis.call('SPOP', p .. 'nn:' .. node, count)
  for _, nick in ipairs(nicks) do
    if redis.call('HGET', p .. 'nicks', nick) == node then
      redis.call('HDEL', p .. 'nicks', nick)
      redis.call('HDEL', p .. 'ns', nick)
    end
  end
  local channels = redis.call('SPOP', p .. 'nc:' .. node, count)
  for _, channel in ipairs(channels) do leave_channel(node, channel) end
  return #nicks + #channels
end
""".replace("@KEEP@", str(LOG_KEEP))


def _script(body: str) -> Script:
    return Script(_PRELUDE + body.replace("@JUMP@", str(SEQUENCE_JUMP)))


#: ARGV: prefix, node, incarnation, a new epoch value -> the epoch in force.
REGISTER = _script("""
local node = ARGV[2]
redis.call('SET', p .. 'epoch', ARGV[4], 'NX')
local ok, info = pcall(redis.call, 'INFO', 'server')  -- a managed Redis may refuse INFO
local run = ok and string.match(info, 'run_id:(%w+)')
local known = redis.call('GET', p .. 'runid')
if run and known ~= run then
  redis.call('SET', p .. 'runid', run)
  if known then
    local now = now_ms()
    for _, other in ipairs(redis.call('ZRANGE', p .. 'hb', 0, -1)) do
      redis.call('ZADD', p .. 'hb', now, other)
    end
    -- Data restored from a snapshot may have older sequence numbers than the nodes have seen:
    -- jump past them (the nodes see a gap the streams cannot fill, and resynchronise).
    redis.call('INCRBY', p .. 'seq', @JUMP@)
    redis.call('INCRBY', p .. 'ilseq', @JUMP@)
    for _, other in ipairs(redis.call('HKEYS', p .. 'nodes')) do
      if redis.call('EXISTS', p .. 'is:' .. other) == 1 then
        redis.call('INCRBY', p .. 'is:' .. other, @JUMP@)
      end
    end
  end
end
if redis.call('SISMEMBER', p .. 'reaping', node) == 1 then
  while free_claims(node, 1000) > 0 do end
  redis.call('SREM', p .. 'reaping', node)
end
redis.call('HSET', p .. 'nodes', node, ARGV[3])
redis.call('ZADD', p .. 'hb', now_ms(), node)
return redis.call('GET', p .. 'epoch')
""")

#: ARGV: prefix, node, incarnation, dead after (ms), nicks to free per call
#: -> {0} when fenced, else {1, node, node...} (the live nodes).
HEARTBEAT = _script("""
local node = ARGV[2]
if fenced(node, ARGV[3]) then return {0} end
local now = now_ms()
redis.call('ZADD', p .. 'hb', now, node)
local dead = redis.call('ZRANGEBYSCORE', p .. 'hb', '-inf', now - tonumber(ARGV[4]), 'LIMIT', 0, 10)
for _, gone in ipairs(dead) do
  redis.call('ZREM', p .. 'hb', gone)
  redis.call('HDEL', p .. 'nodes', gone)
  redis.call('SADD', p .. 'reaping', gone)
  drop_inbox(gone)
  emit(cjson.encode({{'S', gone, '*.net *.split'}}))
end
local budget = tonumber(ARGV[5])
for _, gone in ipairs(redis.call('SMEMBERS', p .. 'reaping')) do
  if budget <= 0 then break end
  budget = budget - free_claims(gone, budget)
  if redis.call('SCARD', p .. 'nn:' .. gone) + redis.call('SCARD', p .. 'nc:' .. gone) == 0 then
    redis.call('SREM', p .. 'reaping', gone)
  end
end
local live = redis.call('HKEYS', p .. 'nodes')
table.insert(live, 1, 1)
return live
""")

#: ARGV: prefix, node, incarnation, mode, then (folded nick, signon) pairs -> -1 when fenced,
#: else one 1 (now held by this node) or 0 (another node holds it) per nick. Mode ``new`` (a
#: registration, a NICK) never takes a held nick; mode ``again`` (a node claiming its users'
#: nicks after Redis lost its data or fenced it) takes one from a user who signed on later (on
#: equal times, the lower node name keeps it) and tells the network with an ``R`` event.
CLAIM = _script("""
local node = ARGV[2]
if fenced(node, ARGV[3]) then return -1 end
local again = ARGV[4] == 'again'
local results = {}
for i = 5, #ARGV, 2 do
  local nick, signon = ARGV[i], ARGV[i + 1]
  local holder = redis.call('HGET', p .. 'nicks', nick)
  local take = not holder or holder == node
  if not take and again then
    local theirs = tonumber(redis.call('HGET', p .. 'ns', nick) or '0')
    local mine = tonumber(signon)
    take = mine < theirs or (mine == theirs and node < holder)
    if take then
      redis.call('SREM', p .. 'nn:' .. holder, nick)
      emit(cjson.encode({{'R', node, nick, holder}}))
    end
  end
  if take then
    redis.call('HSET', p .. 'nicks', nick, node)
    redis.call('HSET', p .. 'ns', nick, signon)
    redis.call('SADD', p .. 'nn:' .. node, nick)
    results[#results + 1] = 1
  else
    results[#results + 1] = 0
  end
end
return results
""")

#: ARGV: prefix, node, folded nick: frees the nick if this node holds it.
RELEASE = _script("""
local node, nick = ARGV[2], ARGV[3]
if redis.call('HGET', p .. 'nicks', nick) == node then
  redis.call('HDEL', p .. 'nicks', nick)
  redis.call('HDEL', p .. 'ns', nick)
end
redis.call('SREM', p .. 'nn:' .. node, nick)
return 1
""")

#: ARGV: prefix, node, incarnation, payload -> its sequence number, or -1 when fenced.
PUBLISH = _script("""
if fenced(ARGV[2], ARGV[3]) then return -1 end
return emit(ARGV[4])
""")

#: ARGV: prefix, node, incarnation, reason: a clean exit (nicks freed, users split everywhere).
LEAVE = _script("""
local node = ARGV[2]
if fenced(node, ARGV[3]) then return 0 end
redis.call('HDEL', p .. 'nodes', node)
redis.call('ZREM', p .. 'hb', node)
while free_claims(node, 1000) > 0 do end
drop_inbox(node)
emit(cjson.encode({{'S', node, ARGV[4]}}))
return 1
""")

#: ARGV: prefix, node, incarnation, mode, then (folded channel, creation time) pairs -> -1 when
#: fenced, else per channel 1 (this node's time is recorded: it created it) or 0 (it exists),
#: then its creation time. Either way this node now counts as having members in it. Mode
#: ``new``: the first claim wins. Mode ``again`` (a node registering again): the lower creation
#: time wins (InspIRCd's rule: the older channel; merge.py). (A node sends its CHANNEL_LEAVEs
#: before a claim on the same connection, so its own stale count never blocks its re-creation.)
CHANNEL_CLAIM = _script("""
local node = ARGV[2]
if fenced(node, ARGV[3]) then return -1 end
local again = ARGV[4] == 'again'
local results = {}
for i = 5, #ARGV, 2 do
  local channel, created = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', p .. 'chans', channel)
  if current and not (again and tonumber(created) < tonumber(current)) then
    results[#results + 1] = 0
    results[#results + 1] = current
  else
    redis.call('HSET', p .. 'chans', channel, created)
    results[#results + 1] = 1
    results[#results + 1] = created
  end
  redis.call('SADD', p .. 'cn:' .. channel, node)
  redis.call('SADD', p .. 'nc:' .. node, channel)
end
return results
""")

#: ARGV: prefix, node, folded channel...: this node has no members in them any more (the
#: claim of a channel no node has members in goes).
CHANNEL_LEAVE = _script("""
for i = 3, #ARGV do leave_channel(ARGV[2], ARGV[i]) end
return 1
""")

#: ARGV: prefix, node, incarnation, an epoch for a new inbox, then (target, payload) pairs, in
#: the order the node's users sent them: a target ``""`` is the network's events (as PUBLISH),
#: another is that node's inbox (a node not alive is skipped) -> -1 when fenced, else 1. One
#: call carries a whole reactor turn, so each receiver gets its inbox and event batches in the
#: order they were made (pub/sub delivers to one connection in publish order). A payload
#: ``=<n>`` is the one of ARGV[n] (the nodes of one channel get the same lines: sent once).
#:
#: The turn's inbox batches are stored once: one ``ilog`` entry ``0-<n>`` whose field ``d`` lists
#: the deliveries, ``<target> <seq> <after> <k>`` a line each, and field ``<k>`` holds ARGV[k]
#: (each distinct payload once). Each target gets its sequence number and one publish of
#: ``<epoch> <seq> <after>:<n> <payload>``: ``after`` is the last event sequenced before the
#: batch, which its node applies first even when that event has to be read back
#: (inbox.InboxOrder), and ``n`` the entry to read back from after a gap (inbox.InboxFeed). The
#: targets of one payload (a channel's nodes) get one message built once, which names them all:
#: ``*<count> <target> <epoch> <seq>... <after>:<n> <payload>`` (each node reads its own), for
#: up to :data:`SHARED_MESSAGE_TARGETS` of them (past that, another message).
SEND = _script("""
if fenced(ARGV[2], ARGV[3]) then return -1 end
local after, entry = nil, nil
local deliveries, stored, fields = {}, {}, {}
-- This segment's deliveries by payload (target, epoch, seq...), at most @SHARED@ targets a message,
-- in the order first seen.
local groups, order, order_at = {}, {}, {}
local function deliver(target, at)
  -- An inbox's epoch is set by its first batch and goes with its node (drop_inbox): having
  -- one says the node is alive, so only the first batch to a node looks it up in ``nodes``.
  local epoch = redis.call('GET', p .. 'ie:' .. target)
  if not epoch then
    if redis.call('HEXISTS', p .. 'nodes', target) == 0 then return end
    epoch = ARGV[4]
    redis.call('SET', p .. 'ie:' .. target, epoch)
  end
  if not after then after = redis.call('GET', p .. 'seq') or '0' end
  if not entry then entry = redis.call('INCR', p .. 'ilseq') end
  local seq = redis.call('INCR', p .. 'is:' .. target)
  if string.byte(ARGV[at], 1) == 61 then at = tonumber(string.sub(ARGV[at], 2)) end
  if not stored[at] then
    stored[at] = true
    fields[#fields + 1] = at
    fields[#fields + 1] = ARGV[at]
  end
  deliveries[#deliveries + 1] = target .. ' ' .. seq .. ' ' .. after .. ' ' .. at
  local group = groups[at]
  if not group or #group == @SHARED@ * 3 then
    group = {}
    groups[at] = group
    order[#order + 1] = group
    order_at[#order] = at
  end
  group[#group + 1] = target
  group[#group + 1] = epoch
  group[#group + 1] = seq
end
local function publish_segment()
  if #order == 0 then return end
  for n, group in ipairs(order) do
    local at = order_at[n]
    if #group == 3 then
      redis.call('PUBLISH', p .. 'inbox:' .. group[1],
                 group[2] .. ' ' .. group[3] .. ' ' .. after .. ':' .. entry .. ' ' .. ARGV[at])
    else
      local message = '*' .. (#group / 3) .. ' ' .. table.concat(group, ' ') .. ' ' .. after
                      .. ':' .. entry .. ' ' .. ARGV[at]
      for j = 1, #group, 3 do redis.call('PUBLISH', p .. 'inbox:' .. group[j], message) end
    end
  end
  groups, order, order_at = {}, {}, {}
end
for i = 5, #ARGV, 2 do
  if ARGV[i] == '' then
    publish_segment()
    after = emit(ARGV[i + 1])
  else
    deliver(ARGV[i], i + 1)
  end
end
publish_segment()
if entry then
  redis.call('XADD', p .. 'ilog', 'MAXLEN', '~', @INBOX_LOG_KEEP@, '0-' .. entry,
             'd', table.concat(deliveries, '\\n'), unpack(fields))
end
return 1
""".replace("@INBOX_LOG_KEEP@", str(INBOX_LOG_KEEP)).replace("@SHARED@", str(SHARED_MESSAGE_TARGETS)))
