"""Several twistedchat processes as one network, on Redis: nick claims, events, replicas, workers."""
