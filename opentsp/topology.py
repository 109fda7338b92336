"""How chips are cabled together: the links of a multi-chip system (docs/multichip.md).

A *port* is one link of one C2C slice of one chip (``chip 1 C2C_E.0``); a *cable* joins two
ports, full duplex: what one port sends, the other receives. A :class:`Topology` is the set of
cables of ``chips`` chips of one configuration. :func:`loopback`, :func:`ring` and
:func:`full` build the usual ones.

Part of the specification floor: the multi-chip golden model, the checker, the RTL's system
testbench and the compiler all take a :class:`Topology`.
"""

import itertools
from dataclasses import dataclass

from opentsp import isa

__all__ = ["Port", "Cable", "Topology", "TopologyError", "loopback", "ring", "full",
           "SIDES", "get_topology"]

#: The C2C slices, west then east (``REG_C2C_FIRST``'s side numbers).
SIDES = ("C2C_W", "C2C_E")


class TopologyError(ValueError):
    """A topology that the chips cannot be cabled as."""


@dataclass(frozen=True, order=True)
class Port:
    """Link ``link`` of the C2C slice ``side`` (``"C2C_W"`` or ``"C2C_E"``) of chip ``chip``."""
    chip: int
    side: str
    link: int

    @property
    def name(self):
        """The link's name on its chip (``C2C_E.0``)."""
        return isa.c2c_link_name(self.side, self.link)

    def __str__(self):
        return f"chip {self.chip} {self.name}"


@dataclass(frozen=True)
class Cable:
    """Two ports joined, full duplex."""
    a: Port
    b: Port


class Topology:
    """The cables between ``chips`` chips of ``config``.

    Parameters
    ----------
    config : opentsp.config.Config
        Every chip's configuration (one for all: the chips are alike).
    chips : int
        How many chips.
    cables : iterable of Cable
    name : str
        For messages and reports (``ring4``).

    Raises
    ------
    TopologyError
        No chips, a chip without links, a port that does not exist or is cabled twice.
    """

    def __init__(self, config, chips, cables, name="custom"):
        if not isinstance(chips, int) or chips < 1:
            raise TopologyError(f"a system must have at least one chip, not {chips!r}")
        cables = tuple(cables)
        if cables and not config.c2c_links:
            raise TopologyError(f"configuration {config.name!r} has no links "
                                f"(Config.c2c_links = 0)")
        peers = {}
        for cable in cables:
            for port in (cable.a, cable.b):
                self._check_port(config, chips, port)
                if port in peers:
                    raise TopologyError(f"{name}: {port} is cabled twice")
            peers[cable.a], peers[cable.b] = cable.b, cable.a
        self._config, self._chips, self._cables, self._name = config, chips, cables, name
        self._peers = peers

    @staticmethod
    def _check_port(config, chips, port):
        if not 0 <= port.chip < chips:
            raise TopologyError(f"{port}: no chip {port.chip} in a system of {chips}")
        if port.side not in SIDES:
            raise TopologyError(f"{port}: the C2C slices are {SIDES}, not {port.side!r}")
        if not 0 <= port.link < config.c2c_links:
            raise TopologyError(f"{port}: link {port.link} out of range 0.."
                                f"{config.c2c_links - 1} (c2c_links {config.c2c_links})")

    @property
    def config(self):
        return self._config

    @property
    def chips(self):
        return self._chips

    @property
    def cables(self):
        return self._cables

    @property
    def name(self):
        return self._name

    def peer(self, port):
        """The port at the other end of ``port``'s cable, or None if it has none."""
        return self._peers.get(port)

    @property
    def ports(self):
        """Every cabled port, in order."""
        return sorted(self._peers)

    def __repr__(self):
        return f"Topology({self._name!r}, chips={self._chips}, cables={len(self._cables)})"


def loopback(config):
    """One chip whose ``C2C_E.0`` is cabled to its own ``C2C_W.0`` (a test cable)."""
    return Topology(config, 1, [Cable(Port(0, "C2C_E", 0), Port(0, "C2C_W", 0))], "loopback")


def ring(chips, config):
    """``chips`` chips in a ring: chip i's ``C2C_E.0`` to chip i+1's ``C2C_W.0`` (the last to
    the first). With two chips, two cables join the pair."""
    if chips < 2:
        raise TopologyError(f"a ring needs at least 2 chips, not {chips!r}")
    cables = [Cable(Port(i, "C2C_E", 0), Port((i + 1) % chips, "C2C_W", 0))
              for i in range(chips)]
    return Topology(config, chips, cables, f"ring{chips}")


def full(chips, config):
    """``chips`` chips, every pair joined by one cable: each chip takes its ports in the order
    ``C2C_E.0, C2C_W.0, C2C_E.1, ..`` for its peers in chip order (``chips - 1`` ports, so
    ``2 * c2c_links >= chips - 1``)."""
    if chips < 2:
        raise TopologyError(f"a fully connected system needs at least 2 chips, not {chips!r}")
    if chips - 1 > 2 * config.c2c_links:
        raise TopologyError(f"full{chips}: each chip needs {chips - 1} links, configuration "
                            f"{config.name!r} has {2 * config.c2c_links}")
    order = [Port(0, side, link) for link in range(config.c2c_links) for side in
             ("C2C_E", "C2C_W")]
    used = [0] * chips

    def take(chip):
        port = order[used[chip]]
        used[chip] += 1
        return Port(chip, port.side, port.link)

    cables = [Cable(take(i), take(j)) for i, j in itertools.combinations(range(chips), 2)]
    return Topology(config, chips, cables, f"full{chips}")


def get_topology(name, config):
    """``loopback``, ``ringN`` or ``fullN`` (N chips) on ``config``."""
    if name == "loopback":
        return loopback(config)
    for prefix, build in (("ring", ring), ("full", full)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return build(int(name[len(prefix):]), config)
    raise TopologyError(f"unknown topology {name!r}; known: loopback, ringN, fullN "
                        f"(N chips)")
