"""Endpoint plugin: ``reuseport:PORT`` listens with SO_REUSEPORT (``twistd chat --workers``)."""

from twistedchat.cluster.reuseport import ReusePortParser

reuseport = ReusePortParser()
