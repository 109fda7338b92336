"""Lowering plan: kernels (fused operation chains), tensor layouts and static data placement.

**Kernels.** Every ``matmul`` starts a kernel; the VXM operations after it (every other
operation: ``bias_add``, ``relu``, ``requant``, ``add``, ``mul``, ``maximum``, ``exp``,
``reciprocal``, ``rsqrt``, ``tanh``, ``cast``) join its *chain* while the value they take has
no other user and is not a graph output, so the MXM's accumulator rows flow straight into
chained VXM instructions (operand ``r``, section 8) and only the chain's result is stored. A
VXM operation whose operand cannot be fused starts a kernel of its own that reads that operand
from memory.

**Layout.** A tensor of R x C elements is stored as vectors of ``B = mxm_size`` columns: vector
``(r, cb)`` holds columns ``cb*B .. cb*B+B-1`` of row ``r`` in lanes ``0..B-1`` (the lanes the
MXM uses), one byte plane per word: an int8 vector is one word, an int32 or float32 vector four
words in four different MEM slices on one side of the VXM (so that its four bytes can reach the
VXM together on an aligned group of streams), a float16 or bfloat16 vector two. A 1-D constant
(bias, requant multiplier or shift) is one row, broadcast over rows. Matmul weights are stored
by column instead: vector ``(kb, nb, j)`` holds column ``nb*B + j`` of rows ``kb*B ..
kb*B+B-1`` (int8: one word; float16 or bfloat16: the bit patterns, two words, low byte first,
the stream pair of ``lw.f16``/``lw.bf16``), loaded into row ``j`` of a plane (zero beyond
the matrix, so that whatever an int8 activation vector holds in lanes past the last valid
column is multiplied by zero; a float one must hold finite values there, see
``program._check_float_matmuls``; a block's columns are padded with zero columns to whole
``lw`` elements of ``mxm_load_rows``). A vector may have several copies (one per MXM that
streams it).

**Placement.** Inputs and constants are placed before scheduling (the image holds them);
results get their words when the scheduler captures them.
"""

from dataclasses import dataclass, field

import numpy as np

from opentsp import isa, packing
from opentsp.compiler.graph import BINARY, DTYPES, INDEXED, VIEWS, CompileError, to_storage
from opentsp.compiler.lower import ZERO, ViewVectors, view_bases
from opentsp.compiler.resources import striped_rows

__all__ = ["Copy", "Store", "Step", "Kernel", "build_kernels", "Units", "engines", "matmul_units",
           "load_columns", "block_columns", "block_values", "place_static", "DTYPE_CODES"]

DTYPE_CODES = {"int8": isa.DType.I8, "int32": isa.DType.I32, "float32": isa.DType.F32,
               "float16": isa.DType.F16, "bfloat16": isa.DType.BF16}
#: The VXM function of each elementwise operation (``cast`` is ``cvt``).
MNEMONICS = {"relu": "relu", "bias_add": "add", "exp": "exp", "reciprocal": "recip",
             "rsqrt": "rsqrt", "tanh": "tanh", "cast": "cvt",
             **{op: mnemonic for op, (mnemonic, _) in BINARY.items()}}
#: Operations of two operands whose chain may continue through either (they commute).
COMMUTATIVE = ("add", "mul", "maximum", "minimum", "equal", "bitwise_and", "bitwise_or",
               "bitwise_xor")


@dataclass
class Copy:
    """One stored copy of a vector: ``planes[i] = (mem name, word)`` holds byte plane ``i``;
    reads from cycle ``ready`` on see it."""
    planes: tuple
    ready: int = 0


@dataclass
class Store:
    """A tensor's vectors in memory: ``vectors[key] = [Copy, ...]``."""
    name: str
    dtype: str
    layout: str                      # "rows", "wcols" or "indexed"
    vectors: dict = field(default_factory=dict)
    indexed: object = None           # the Indexed placement of an indexed tensor

    @property
    def width(self):
        return DTYPES[self.dtype]


@dataclass
class Step:
    """One chained VXM operation: ``mnemonic.dtype`` (``rtype`` for ``cvt``); ``b`` is the
    store name of operand b, broadcast over rows if ``broadcast``."""
    node: object
    mnemonic: str
    dtype: str
    rtype: str
    b: str | None = None
    broadcast: bool = False


@dataclass
class Kernel:
    """A matmul (``matmul`` is its node), a VXM chain reading ``head`` from memory, then the
    chained ``steps``, or a ``read_row``/``write_row`` (``indexed``); ``tail`` is the tensor
    it stores."""
    matmul: object = None
    head: object = None
    steps: list = field(default_factory=list)
    tail: object = None
    deps: set = field(default_factory=set)      # names of tensors it reads from memory
    indexed: object = None

    @property
    def nodes(self):
        first = [n for n in (self.matmul, self.indexed) if n is not None]
        return first + [s.node for s in self.steps]


def _steps_for(node, operand):
    """The chained VXM steps that compute ``node`` from ``operand`` (and its other inputs)."""
    dtype = node.output.dtype
    if node.op == "bias_add":
        return [Step(node, "add", dtype, dtype, node.inputs[1].name, True)]
    if node.op in BINARY:
        # Through either operand of a commutative one, through a of the others (a - b, a > b);
        # a (N,) constant is one row read for every row.
        other = node.inputs[1] if node.inputs[0] is operand else node.inputs[0]
        return [Step(node, MNEMONICS[node.op], node.inputs[0].dtype, dtype, other.name,
                     len(other.shape) == 1)]
    if node.op == "cast":
        return [Step(node, "cvt", node.inputs[0].dtype, dtype)]
    if node.op in MNEMONICS:
        return [Step(node, MNEMONICS[node.op], dtype, dtype)]
    if node.op == "requant":
        return [Step(node, "mulh", "int32", "int32", f"{node.name}.multiplier", True),
                Step(node, "rshr", "int32", "int32", f"{node.name}.shift", True),
                Step(node, "cvt", "int32", "int8")]
    raise CompileError(f"{node.describe()}: unsupported operation")   # pragma: no cover


def build_kernels(graph):
    """Kernels in an order where every kernel comes after those whose results it reads."""
    uses = {}
    for node in graph.nodes:
        for tensor in node.inputs:
            uses[tensor.name] = uses.get(tensor.name, 0) + 1
    outputs = {t.name for t in graph.outputs.values()}
    kernels, open_tail = [], {}     # tensor name -> kernel whose chain may still grow
    for node in graph.nodes:
        if node.op in ("input", "const", "state", *VIEWS):
            continue
        if node.op in ("matmul", *INDEXED):
            kernel = Kernel(matmul=node if node.op == "matmul" else None,
                            indexed=node if node.op in INDEXED else None, tail=node.output,
                            deps={t.name for t in node.inputs})
            kernels.append(kernel)
        else:
            kernel = None
            for operand in node.inputs if node.op in COMMUTATIVE else node.inputs[:1]:
                candidate = open_tail.get(operand.name)
                if (candidate is not None and uses.get(operand.name) == 1
                        and operand.name not in outputs):
                    kernel, head = candidate, operand
                    break
            if kernel is None:
                head = node.inputs[0]
                kernel = Kernel(head=head, tail=None, deps={head.name})
                kernels.append(kernel)
            if kernel.tail is not None:
                open_tail.pop(kernel.tail.name, None)
            steps = _steps_for(node, head)
            kernel.steps += steps
            kernel.deps |= {s.b for s in steps if s.b is not None}
            kernel.tail = node.output
        if kernel.indexed is None:
            open_tail[kernel.tail.name] = kernel
    _write_after_reads(kernels, view_bases(graph))
    return _ordered(kernels, view_bases(graph))


def _write_after_reads(kernels, bases):
    """A ``write_row`` changes its state's memory in place: every other kernel that reads the
    version it replaces (directly or through a view) is scheduled first (the scheduler then
    places the writes after their reads, ``Scheduler.indexed``)."""
    for kernel in kernels:
        node = kernel.indexed
        if node is None or node.op != "write_row":
            continue
        old = node.inputs[0].name
        for other in kernels:
            reads = {b for name in other.deps for b in bases.get(name, [name])}
            if other is not kernel and old in reads:
                kernel.deps.add(other.tail.name)


def _ordered(kernels, bases):
    """``kernels`` ordered so that each comes after every kernel whose tail it reads (through
    views: their ``bases``), level by level: a kernel's level is one more than its deepest
    producer's, and the scheduler places all kernels of a level (in graph order) before the
    next level's. Independent branches (the heads of an attention) so reach every sequencer
    interleaved, rather than one branch's whole chain before the next one's first step: the
    sequencers keep program order."""
    for kernel in kernels:
        kernel.deps = {b for name in kernel.deps for b in bases.get(name, [name])}
    producer = {k.tail.name: k for k in kernels}
    ordered, state = [], {}

    def visit(kernel):
        if state.get(id(kernel)) == "done":
            return
        state[id(kernel)] = "busy"
        for name in sorted(kernel.deps):
            other = producer.get(name)
            if other is not None and other is not kernel:
                visit(other)
        state[id(kernel)] = "done"
        ordered.append(kernel)

    for kernel in kernels:
        visit(kernel)
    level = {}
    for kernel in ordered:
        level[id(kernel)] = 1 + max((level[id(producer[name])] for name in kernel.deps
                                     if producer.get(name) not in (None, kernel)), default=0)
    return sorted(ordered, key=lambda kernel: level[id(kernel)])


@dataclass
class Units:
    """A matmul's work split: ``units[u] = (rows, nb, mxm, plane)`` with ``rows`` the rows of x
    whose accumulators it uses (at most ``mxm_accumulators``), ``nb`` the column block and
    ``(mxm, plane)`` the MXM plane (*engine*) that computes it."""
    kt: int
    nt: int
    units: list


def engines(config):
    """The MXM planes in the order units are dealt to them: ``(mxm, plane)``, plane 0 of both
    MXMs first."""
    return [(mxm, p) for p in range(config.mxm_planes) for mxm in ("MXM_W", "MXM_E")]


def matmul_units(node, config):
    """Split ``node``'s output into units of at most ``mxm_accumulators`` rows x one block of
    ``mxm_size`` columns, dealt round-robin to the :func:`engines` (so that consecutive units
    run side by side); when there are fewer units than engines, the rows are split further."""
    m, k = node.inputs[0].shape
    n = node.inputs[1].shape[1]
    size = config.mxm_size
    kt, nt = -(-k // size), -(-n // size)
    dealt = engines(config)
    chunks = -(-m // config.mxm_accumulators)
    if nt * chunks < len(dealt):
        chunks = max(chunks, min(m, -(-len(dealt) // nt)))     # every engine some rows
    bounds = [round(i * m / chunks) for i in range(chunks + 1)]
    units = []
    for c in range(chunks):
        rows = list(range(bounds[c], bounds[c + 1]))
        for nb in range(nt):
            units.append((rows, nb, *dealt[len(units) % len(dealt)]))
    return Units(kt, nt, units)


def block_columns(size, n, nb):
    """The columns of block ``nb`` of a tensor ``n`` columns wide that the MXM computes: all
    ``size`` of them for a single column, which every lane holds (:func:`block_values`)."""
    return size if n == 1 else min(size, n - nb * size)


def block_values(row, cb, size):
    """The values of block ``cb`` of ``row`` as stored: a single column in every lane (so that
    it meets every lane of another vector, and can address a ``gather``), else the block's
    columns."""
    return np.repeat(row[:1], size) if len(row) == 1 else row[cb * size:(cb + 1) * size]


def load_columns(config, columns):
    """The weight columns a plane loads for a block of ``columns`` real ones: whole ``lw``
    elements of ``mxm_load_rows`` columns (the padding ones are zero)."""
    rows = config.mxm_load_rows
    return -(-columns // rows) * rows


#: Consecutive rows of an int8 row-layout tensor in one MEM slice (see _place_rows), on chips
#: with at least ``2 * ROWS_PER_SLICE`` slices per hemisphere for them.
ROWS_PER_SLICE = 8


def rows_per_slice(chip):
    """Consecutive rows of an int8 row-layout tensor per MEM slice. With many slices, runs of
    ``ROWS_PER_SLICE`` let one ``sread`` feed as many ``abc`` elements (groq: the queues hold
    a third of the words); with few, one row per slice in turn is faster (default 64^3: 98.4%
    against 86.9% with runs of 4), because every read of a run takes its slice's queue slot
    while the drains need slots there too."""
    reserved = {m for mems in chip.weight_mems.values() for m in mems}
    free = min(sum(m not in reserved for m in mems) for mems in chip.sides.values())
    return ROWS_PER_SLICE if free >= 2 * ROWS_PER_SLICE else 1


def _vector_bytes(values, dtype, size, lanes):
    """Byte planes ``(width, lanes)`` of up to ``size`` values (storage integers,
    :func:`~opentsp.compiler.graph.to_storage`), zero beyond."""
    code = DTYPE_CODES[dtype]
    padded = np.zeros(lanes, dtype=np.int64)
    padded[:len(values)] = values
    return packing.pack(padded.astype(packing.NP_DTYPE[code]), code)


class _Placer:
    """Spreads words over MEM slices round-robin (per hemisphere) and stores the vectors there.

    Attributes
    ----------
    data_of : dict
        ``(mem index, addr) -> label`` of every word placed.
    """

    def __init__(self, chip):
        self.chip = chip
        self.turn = {"W": 0, "E": 0}
        self.data_of = {}

    def int8_slice(self, side):
        # Nearest to the side's MXM first: the first operands reach it soonest. Not the
        # weight slices (resources.weight_slices) while any other has room.
        mems = self.chip.sides[side][::-1]
        reserved = set(self.chip.weight_mems.get(side, ()))
        if reserved:
            mems = [m for m in mems if m not in reserved and self.chip.words_free(m)] or mems
        for _ in range(len(mems)):
            mem = mems[self.turn[side] % len(mems)]
            self.turn[side] += 1
            if self.chip.words_free(mem):
                return mem
        return None

    def group_slices(self, side, width):
        reserved = set(self.chip.weight_mems.get(side, ()))
        free = [m for m in self.chip.sides[side] if self.chip.words_free(m)]
        mems = [m for m in free if m not in reserved]
        mems = mems if len(mems) >= width else free
        if len(mems) < width:
            return None
        start = self.turn[side]
        # 16-bit vectors (a matmul's x, one per abc) side by side: consecutive ones in
        # different slices, so that they can be read in consecutive cycles.
        self.turn[side] += width if width == 2 else 1
        return [mems[(start + i) % len(mems)] for i in range(width)]

    def _slices(self, side, width):
        """MEM slices for the ``width`` byte planes of one copy: on ``side``, else the other."""
        other = "E" if side == "W" else "W"
        if width == 1:
            mem = self.int8_slice(side) or self.int8_slice(other)
            return [mem] if mem else None
        return self.group_slices(side, width) or self.group_slices(other, width)

    def put(self, store, key, planes_bytes, sides, label, pinned=None):
        """Store vector ``key`` of ``store`` (its byte planes), one copy per entry of
        ``sides``; in the slices ``pinned[side]`` (one per plane; a slice name for int8) if they
        have room."""
        chip = self.chip
        copies = []
        for side in sides:
            mems = (pinned or {}).get(side)
            mems = [mems] if isinstance(mems, str) else mems
            if not (mems and all(chip.words_free(m) for m in mems)):
                mems = self._slices(side, store.width)
            if not mems:
                raise CompileError(f"tensor {label} does not fit in the MEM slices of "
                                   f"configuration {chip.config.name!r}")
            planes = tuple((mem, chip.alloc_or_raise(mem, label)) for mem in mems)
            for (mem, addr), plane in zip(planes, planes_bytes, strict=True):
                chip.data[(chip.mem_index[mem], addr)] = plane
                self.data_of[(chip.mem_index[mem], addr)] = label
            copies.append(Copy(planes))
        store.vectors[key] = copies


def place_static(graph, kernels, chip, copies_of):
    """Place every input and constant (and the requant constants) in memory.

    Parameters
    ----------
    copies_of : dict
        ``tensor name -> list of sides`` ("W"/"E"): where each copy of an x-role (row layout)
        tensor should live; ``weights name + "@w" -> "one"`` keeps one copy of the weights even
        if both MXMs stream them.

    Returns
    -------
    stores : dict
        ``name -> Store`` for the row layout (``name``) and weights (``name + "@w"``).
    inputs : dict
        ``input name -> [(key, Copy), ...]`` for :meth:`CompiledProgram.image_for`.
    data_of : dict
        ``(mem index, addr) -> label`` of every word placed.
    """
    placer = _Placer(chip)
    stores = {}
    # Weight layouts first, in the hemisphere of the MXM that streams them.
    for kernel in kernels:
        node = kernel.matmul
        if node is None or node.inputs[1].name + "@w" in stores:
            continue
        if node.inputs[1].node.op == "const":
            _place_weights(node, stores, placer, copies_of)
        else:       # transpose(k): k's rows (lower.ViewVectors)
            w = node.inputs[1]
            stores[w.name + "@w"] = Store(w.name + "@w", w.dtype, "wcols",
                                          ViewVectors(stores, w.node, chip.config.mxm_size,
                                                      chip.config.mxm_load_rows))
    # Indexed layouts: states and the tables of read_row, then their versions.
    inputs = {}
    nodes = {n.name: n for n in graph.nodes}
    for name in indexed_tensors(graph):
        store = stores[name] = _place_indexed(nodes[name], placer)
        stores[store.indexed.base_name] = store.indexed.base_store
        if nodes[name].op == "input":
            inputs[name] = store
    # Row layouts: inputs, constants used as operands, requant constants.
    for node in graph.nodes:
        tensor = node.output
        if tensor.name in stores:
            continue
        if node.op == "input" or (node.op == "const" and tensor.name in copies_of):
            store = _place_rows(node, stores, placer, copies_of)
            if node.op == "input":
                inputs[tensor.name] = store
        if node.op == "requant":
            _place_requant_constants(node, stores, placer)
        if node.op in VIEWS:
            stores[tensor.name] = Store(tensor.name, tensor.dtype, "rows",
                                        ViewVectors(stores, node, chip.config.mxm_size,
                                                    chip.config.mxm_load_rows))
            _place_zero(DTYPES[tensor.dtype], stores, placer)
    return stores, inputs, placer.data_of


def indexed_tensors(graph):
    """Names of the tensors stored in the indexed layout: every state, and the constants and
    inputs that ``read_row`` reads."""
    names = [n.name for n in graph.nodes if n.op == "state"]
    for node in graph.nodes:
        table = node.inputs[0] if node.op == "read_row" else None
        if table is not None and table.node.op in ("const", "input") and table.name not in names:
            names.append(table.name)
    return names


@dataclass
class Indexed:
    """Where an indexed tensor lives: row ``r`` of column block ``cb``, byte plane ``p`` is
    word ``base + r // stripes`` of ``groups[r % stripes][cb][p]`` (one base for all, so that
    one address vector ``index + base`` reaches every word of a row in a group), all on
    ``side``; ``base_name`` is the int32 constant holding ``base`` (in every lane). A striped
    tensor (``stripes > 1``, ``compiler.lower``) keeps one spare word after its rows in each
    slice, the *dummy* row that a ``write_row`` writes in the groups it does not change."""
    side: str
    base: int
    groups: list
    base_name: str
    base_store: object = None
    stripes: int = 1

    @property
    def slices(self):
        """``[cb][p] -> slice`` of group 0 (of every row when not striped)."""
        return self.groups[0]


def _place_indexed(node, placer):
    """Place ``node``'s tensor (a state, or a table of ``read_row``) in the indexed layout; its
    Store (``layout = "indexed"``, ``indexed`` the :class:`Indexed`)."""
    chip, config = placer.chip, placer.chip.config
    tensor = node.output
    size, width = config.mxm_size, DTYPES[tensor.dtype]
    stripes = node.params.get("stripes", 1)
    blocks = -(-tensor.cols // size)
    words = blocks * width
    kept = striped_rows(tensor.rows, config) if stripes > 1 else tensor.rows
    depth = kept // stripes + (stripes > 1)         # words a slice holds, the dummy row too
    side, mems = max(((side, [m for m in chip.sides[side] if chip.words_free(m) > depth])
                      for side in ("W", "E")), key=lambda pair: len(pair[1]))
    if len(mems) < words * stripes:
        striped = f" in each of {stripes} slice groups" if stripes > 1 else ""
        raise CompileError(
            f"tensor {tensor.name!r} does not fit the indexed layout: a row of it is {words} "
            f"words ({blocks} blocks of {width} bytes), each in its own MEM slice of one "
            f"side{striped}, and {len(mems)} of configuration {config.name!r}'s slices on a "
            f"side have room")
    mems = mems[:words * stripes]
    banks = config.mem_banks
    start = max(chip.next_word[(m, b)] for m in mems for b in range(banks))
    end = start + -(-depth // banks)
    if end > config.mem_words // banks:
        raise CompileError(f"tensor {tensor.name!r} ({tensor.rows} rows) does not fit: its "
                           f"slices have {config.mem_words - start * banks} words left")
    for m in mems:
        for b in range(banks):
            chip.next_word[(m, b)] = end
    base = start * banks
    groups = [[mems[(g * blocks + cb) * width:(g * blocks + cb + 1) * width]
               for cb in range(blocks)] for g in range(stripes)]
    store = Store(tensor.name, tensor.dtype, "indexed",
                  indexed=Indexed(side, base, groups, f"{tensor.name}.base", stripes=stripes))
    value = (node.params.get("init") if node.op == "state" else node.params.get("value"))
    value = (to_storage(value, tensor.dtype) if value is not None
             else np.zeros(tensor.shape, np.int64))
    value = np.concatenate([value, np.zeros((kept - tensor.rows, tensor.cols), value.dtype)])
    for r in range(kept):
        for cb in range(blocks):
            planes = tuple((m, base + r // stripes) for m in groups[r % stripes][cb])
            for (m, addr), plane in zip(planes, _vector_bytes(
                    block_values(value[r], cb, size), tensor.dtype, size, config.lanes),
                    strict=True):
                chip.data[(chip.mem_index[m], addr)] = plane
                placer.data_of[(chip.mem_index[m], addr)] = f"{tensor.name!r}"
            store.vectors[(r, cb)] = [Copy(planes)]
    base_store = Store(store.indexed.base_name, "int32", "rows")
    placer.put(base_store, (0, 0), _vector_bytes(np.full(size, base), "int32", size,
                                                 config.lanes),
               ["W", "E"], f"{tensor.name!r} base")
    store.indexed.base_store = base_store
    return store


def _place_zero(width, stores, placer):
    """The zero vectors of ``width`` byte planes that views read for missing rows and blocks
    (:class:`~opentsp.compiler.lower.ViewVectors`), once, a copy on each side: ``@zero{width}``
    off the load pins (:func:`load_pins`) and, where ``lw`` loads ``R > 1`` columns, one
    ``@zero{width}.{g}`` in each group ``g`` of the pins, for the padding columns of an ``lw``
    element, each in its own slices as the element wants them."""
    name = f"{ZERO}{width}"
    if name in stores:
        return
    chip = placer.chip
    dtype = {1: "int8", 2: "bfloat16", 4: "int32"}[width]
    zeros = np.zeros((width, chip.config.lanes), np.uint8)
    pins = load_pins(chip, width) if width < 4 and chip.config.mxm_load_rows > 1 else {}
    away = {side: [m for m in mems if m not in pins.get(side, ())][:width]
            for side, mems in chip.sides.items()}
    store = stores[name] = Store(name, dtype, "rows")
    placer.put(store, (0, 0), zeros, ["W", "E"], "zero vector",
               pinned={side: mems for side, mems in away.items()
                       if pins and len(mems) == width})
    rows = chip.config.mxm_load_rows
    for group in range(rows if rows > 1 else 0):
        store = stores[f"{name}.{group}"] = Store(f"{name}.{group}", dtype, "rows")
        pinned = {side: mems[group * width:(group + 1) * width] for side, mems in pins.items()}
        placer.put(store, (0, 0), zeros, ["W", "E"], "zero vector", pinned=pinned)


def _weight_sides(units, copies):
    """``column block -> sides`` of the MXMs that stream it (``copies == "one"``: the first)."""
    side_of_nb = {}         # a copy in the hemisphere of every MXM that streams it
    for _, nb, mxm, _ in units.units:
        side_of_nb.setdefault(nb, [])
        if mxm[-1] not in side_of_nb[nb]:
            side_of_nb[nb].append(mxm[-1])
    if copies == "one":
        side_of_nb = {nb: sides[:1] for nb, sides in side_of_nb.items()}
    return side_of_nb


def weight_pins(chip, width):
    """``side -> slices``: the slices whose ``j``-th (mod their number) holds plane 0 of weight
    column ``j``, the next ones its other planes. int8 (``width`` 1): the weight slices
    (:func:`~opentsp.compiler.resources.weight_slices`); float16 or bfloat16 with ``R =
    mxm_load_rows > 1``: ``2R`` slices (the weight slices first, then those nearest the MXM), so
    that the ``2R`` words of one ``lw`` element lie in ``2R`` different slices."""
    rows = chip.config.mxm_load_rows
    if width == 1:
        return dict(chip.weight_mems)
    if rows == 1:
        return {}       # the two planes of a column: any two slices (_Placer.group_slices)
    pins = {}
    for side, mems in chip.sides.items():
        reserved = list(chip.weight_mems.get(side, ()))
        rest = [m for m in mems[::-1] if m not in reserved]
        pins[side] = (reserved + rest)[:max(width * rows, len(reserved))]
    return pins


def load_pins(chip, width):
    """``side -> slices`` whose ``g``-th group of ``width`` holds the rows ``r`` with ``r mod R
    = g`` of a computed tensor that ``lw`` loads ``R = mxm_load_rows`` at a time: the weight
    pins (:func:`weight_pins`), or where those are none (int8 on a chip with fewer than ``2R``
    slices a side) the ``R x width`` slices nearest each MXM."""
    rows = chip.config.mxm_load_rows
    return weight_pins(chip, width) or {side: mems[::-1][:rows * width]
                                        for side, mems in chip.sides.items()}


def _place_weights(node, stores, placer, copies_of):
    """Place the weights of matmul ``node`` by column (``(kb, nb, j)`` words; int8 or the bit
    patterns of float16 / bfloat16, two byte planes)."""
    config = placer.chip.config
    size, lanes = config.mxm_size, config.lanes
    w = node.inputs[1]
    name = w.name + "@w"
    value = to_storage(w.node.params["value"], w.dtype)
    units = matmul_units(node, config)
    side_of_nb = _weight_sides(units, copies_of.get(name))
    store = stores[name] = Store(name, w.dtype, "wcols")
    pins = weight_pins(placer.chip, store.width)
    k, n = value.shape
    for kb in range(units.kt):
        for nb in range(units.nt):
            for j in range(load_columns(config, block_columns(size, n, nb))):
                column = (value[kb * size:(kb + 1) * size, min(nb * size + j, n - 1)]
                          if nb * size + j < n or n == 1 else np.zeros(0, np.int64))
                pinned = {side: [mems[(store.width * j + b) % len(mems)]
                                 for b in range(store.width)]
                          for side, mems in pins.items()}
                placer.put(store, (kb, nb, j), _vector_bytes(column, w.dtype, size, lanes),
                           side_of_nb[nb], f"{w.name!r}", pinned)


def _place_rows(node, stores, placer, copies_of):
    """Place an input or constant ``node`` in row layout; returns its Store."""
    config = placer.chip.config
    size, lanes = config.mxm_size, config.lanes
    tensor = node.output
    store = stores[tensor.name] = Store(tensor.name, tensor.dtype, "rows")
    sides = copies_of.get(tensor.name, ["W"])
    value = (to_storage(node.params["value"], tensor.dtype) if node.op == "const"
             else np.zeros(tensor.shape, np.int64))
    value = value.reshape(tensor.rows, tensor.cols)
    # Column block by column block, rows_per_slice consecutive rows (abc after abc) at
    # consecutive addresses of one slice (one sread sequence feeds them), the next ones in the
    # next slice.
    run = rows_per_slice(placer.chip)
    for cb in range(-(-tensor.cols // size)):
        pinned = None
        for r in range(tensor.rows):
            if store.width == 1 and r % run == 0:
                pinned = {side: placer.int8_slice(side) for side in sides}
            chunk = block_values(value[r], cb, size)
            placer.put(store, (r, cb), _vector_bytes(chunk, tensor.dtype, size, lanes), sides,
                       f"{tensor.name!r}", pinned)
    return store


def _place_requant_constants(node, stores, placer):
    """Place the multiplier and shift of requant ``node`` (int32 rows, a copy on each side)."""
    config = placer.chip.config
    size, lanes = config.mxm_size, config.lanes
    for what in ("multiplier", "shift"):
        name = f"{node.name}.{what}"
        store = stores[name] = Store(name, "int32", "rows")
        value = node.params[what]
        for cb in range(-(-node.output.cols // size)):
            placer.put(store, (0, cb), _vector_bytes(block_values(value, cb, size),
                                                     "int32", size, lanes),
                       ["W", "E"], f"{node.name!r} {what}")
