# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A compiled Avro reader of the fields Starling reads, skipping the rest without building them.

A real LSSTCam deep-field alert holds ~1,200 history rows of 10-136 fields each, of which the broker's
hot path reads a handful (a row's time, band, position and flux). Building every field as a Python
object costs most of a full decode; skipping a field here costs a few machine instructions. The reader
is compiled from the writer schema and a projection (``starling.alert.projection``): which fields of
each record type to keep. Kept values are the Python values fastavro and cavro give (the tests check
each kept field against them on every real sample); every byte is bounds-checked, so a hostile message
raises (EOFError, IndexError, ValueError, UnicodeDecodeError) and never reads past its buffer.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport INT64_MIN, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from starling.alert.record_readers import LeftOverBytesError

# Records nested deeper than this are refused: a recursive schema (a linked list) could otherwise take a
# hostile message down the C stack; real alerts nest three deep.
cdef enum:
    MAX_DEPTH = 256

cdef enum Kind:
    K_NULL, K_BOOLEAN, K_INT, K_LONG, K_FLOAT, K_DOUBLE, K_BYTES, K_STRING, K_FIXED, K_ENUM
    K_ARRAY, K_MAP, K_UNION, K_RECORD

_PRIMITIVES = {
    "null": K_NULL, "boolean": K_BOOLEAN, "int": K_INT, "long": K_LONG, "float": K_FLOAT,
    "double": K_DOUBLE, "bytes": K_BYTES, "string": K_STRING,
}


cdef class _Buffer:
    """The bytes being read and the position; every read checks the end first."""

    cdef const unsigned char* data
    cdef Py_ssize_t pos
    cdef Py_ssize_t end
    cdef int depth  # records entered and not yet left
    cdef object owner  # keeps the bytes alive while they are read

    cdef inline int enter(self) except -1:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError(f"records nested more than {MAX_DEPTH} deep")
        return 0

    cdef inline int need(self, Py_ssize_t n) except -1:
        if n < 0 or n > self.end - self.pos:
            raise EOFError(f"truncated: {n} bytes wanted at byte {self.pos} of {self.end}")
        return 0

    cdef inline int64_t varint(self) except? -1:
        cdef uint64_t value = 0
        cdef int shift = 0
        cdef unsigned char byte
        while True:
            if self.pos >= self.end:
                raise EOFError(f"truncated: a number runs past byte {self.end}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (<uint64_t>(byte & 0x7F)) << shift
            if not (byte & 0x80):
                break
            shift += 7
            if shift > 63:
                raise ValueError("a variable-length number longer than 10 bytes")
        return <int64_t>((value >> 1) ^ (-(<int64_t>(value & 1))))

    cdef inline Py_ssize_t length(self) except -1:
        cdef int64_t n = self.varint()
        self.need(n)
        return <Py_ssize_t>n

    cdef inline double float8(self) except? -1:
        # Avro's doubles are little-endian: assembled byte by byte, right on any host.
        cdef uint64_t bits = 0
        cdef double value
        cdef int i
        self.need(8)
        for i in range(8):
            bits |= (<uint64_t>self.data[self.pos + i]) << (8 * i)
        memcpy(&value, &bits, 8)
        self.pos += 8
        return value

    cdef inline float float4(self) except? -1:
        cdef uint32_t bits = 0
        cdef float value
        cdef int i
        self.need(4)
        for i in range(4):
            bits |= (<uint32_t>self.data[self.pos + i]) << (8 * i)
        memcpy(&value, &bits, 4)
        self.pos += 4
        return value


cdef class _Node:
    cdef int kind
    cdef Py_ssize_t size          # fixed's bytes
    cdef list children            # record: every field's node; union: branches; array, map: [item]
    cdef list names               # record: every field's name
    cdef list kept                # record: whether each field is read (else skipped)
    cdef list symbols             # enum
    cdef bint logical             # a logical type's (a projection may skip it, never read it)
    cdef bint sizeless            # its values may take no bytes (null, fixed(0), records of such)

    cdef object read(self, _Buffer buf):
        cdef Py_ssize_t n, i, budget
        cdef int64_t count, index
        cdef dict record
        cdef list items
        cdef _Node child
        cdef unsigned char flag
        if self.kind == K_DOUBLE:
            return buf.float8()
        if self.kind == K_LONG or self.kind == K_INT:
            return buf.varint()
        if self.kind == K_UNION:
            index = buf.varint()
            if index < 0 or index >= len(self.children):
                raise IndexError(f"union branch {index} of {len(self.children)}")
            return (<_Node>self.children[index]).read(buf)
        if self.kind == K_NULL:
            return None
        if self.kind == K_STRING:
            n = buf.length()
            value = PyUnicode_DecodeUTF8(<const char*>(buf.data + buf.pos), n, NULL)
            buf.pos += n
            return value
        if self.kind == K_FLOAT:
            return <double>buf.float4()
        if self.kind == K_RECORD:
            buf.enter()
            record = {}
            for i in range(len(self.children)):
                child = <_Node>self.children[i]
                if self.kept[i]:
                    record[self.names[i]] = child.read(buf)
                else:
                    child.skip(buf)
            buf.depth -= 1
            return record
        if self.kind == K_ARRAY:
            items = []
            child = <_Node>self.children[0]
            budget = buf.end - buf.pos
            count = self._block(buf, &budget)
            while count != 0:
                for i in range(count):
                    items.append(child.read(buf))
                count = self._block(buf, &budget)
            return items
        if self.kind == K_BOOLEAN:
            buf.need(1)
            flag = buf.data[buf.pos]
            buf.pos += 1
            return flag != 0
        if self.kind == K_BYTES:
            n = buf.length()
            value = PyBytes_FromStringAndSize(<const char*>(buf.data + buf.pos), n)
            buf.pos += n
            return value
        if self.kind == K_FIXED:
            buf.need(self.size)
            value = PyBytes_FromStringAndSize(<const char*>(buf.data + buf.pos), self.size)
            buf.pos += self.size
            return value
        if self.kind == K_ENUM:
            index = buf.varint()
            if index < 0 or index >= len(self.symbols):
                raise IndexError(f"enum symbol {index} of {len(self.symbols)}")
            return self.symbols[index]
        if self.kind == K_MAP:
            mapped = {}
            child = <_Node>self.children[0]
            budget = buf.end - buf.pos
            count = self._block(buf, &budget)
            while count != 0:
                for i in range(count):
                    n = buf.length()
                    key = PyUnicode_DecodeUTF8(<const char*>(buf.data + buf.pos), n, NULL)
                    buf.pos += n
                    mapped[key] = child.read(buf)
                count = self._block(buf, &budget)
            return mapped
        raise ValueError(f"unknown node kind {self.kind}")

    cdef int skip(self, _Buffer buf) except -1:
        cdef Py_ssize_t i, budget
        cdef int64_t count, index
        cdef _Node child
        if self.kind == K_DOUBLE:
            buf.need(8)
            buf.pos += 8
        elif self.kind == K_LONG or self.kind == K_INT:
            buf.varint()
        elif self.kind == K_ENUM:
            index = buf.varint()
            if index < 0 or index >= len(self.symbols):
                raise IndexError(f"enum symbol {index} of {len(self.symbols)}")
        elif self.kind == K_UNION:
            index = buf.varint()
            if index < 0 or index >= len(self.children):
                raise IndexError(f"union branch {index} of {len(self.children)}")
            (<_Node>self.children[index]).skip(buf)
        elif self.kind == K_FLOAT:
            buf.need(4)
            buf.pos += 4
        elif self.kind == K_STRING or self.kind == K_BYTES:
            buf.pos += buf.length()
        elif self.kind == K_RECORD:
            buf.enter()
            for i in range(len(self.children)):
                (<_Node>self.children[i]).skip(buf)
            buf.depth -= 1
        elif self.kind == K_ARRAY or self.kind == K_MAP:
            child = <_Node>self.children[0]
            budget = buf.end - buf.pos
            count = self._block(buf, &budget)
            while count != 0:
                for i in range(count):
                    if self.kind == K_MAP:
                        buf.pos += buf.length()
                    child.skip(buf)
                count = self._block(buf, &budget)
        elif self.kind == K_BOOLEAN:
            buf.need(1)
            buf.pos += 1
        elif self.kind == K_FIXED:
            buf.need(self.size)
            buf.pos += self.size
        return 0

    cdef int64_t _block(self, _Buffer buf, Py_ssize_t* budget) except -1:
        """The count of the next block of an array or map (0 at its end). A negative count is followed
        by the block's size in bytes, which is checked. A count the bytes left could not hold (an item
        takes at least one byte) is refused before it is looped over; items that may take none (nulls)
        share one budget over all the blocks of their array, the bytes left where it began, so a
        hostile message cannot make a few bytes declare more items than it has bytes."""
        cdef int64_t count = buf.varint()
        if count == INT64_MIN:
            raise ValueError("a block count out of range")
        if count < 0:
            count = -count
            buf.need(buf.varint())
        if count > buf.end - buf.pos:
            raise ValueError(f"a block declares {count} items in {buf.end - buf.pos} bytes")
        if (<_Node>self.children[0]).sizeless:
            if count > budget[0]:
                raise ValueError(f"an array declares more items that take no bytes than it has bytes")
            budget[0] -= count
        return count


cdef class Projection:
    """A writer schema compiled to read only the kept fields of each record type."""

    cdef _Node root

    def __init__(self, definition, keep):
        """``definition``: the writer schema (parsed JSON); ``keep``: record short name -> the names of
        the fields to read (others are skipped); a record type not named is read whole."""
        self.root = _compile(definition, keep, {}, "")
        _check_read(self.root, set())
        _mark_sizeless(self.root, set())

    def read(self, data, Py_ssize_t offset=0):
        """The projected record of the one record that ``data[offset:]`` holds. ValueError when bytes
        are left over after it."""
        cdef _Buffer buf = _Buffer()
        cdef const unsigned char[::1] view = data
        buf.owner = data
        buf.depth = 0
        buf.end = view.shape[0]
        if offset < 0 or offset > buf.end:
            raise EOFError(f"offset {offset} outside {buf.end} bytes")
        buf.data = &view[0] if buf.end else NULL
        buf.pos = offset
        record = self.root.read(buf)
        if buf.pos != buf.end:
            raise LeftOverBytesError(f"{buf.end - buf.pos} bytes left over after decoding")
        return record

    def read_many(self, data, Py_ssize_t count):
        """The projected records of the ``count`` records that ``data`` holds back to back (an Avro
        container's block). ValueError when bytes are left over after them."""
        cdef _Buffer buf = _Buffer()
        cdef const unsigned char[::1] view = data
        cdef Py_ssize_t i
        if count < 0:
            raise ValueError(f"a block of {count} records")
        buf.owner = data
        buf.depth = 0
        buf.end = view.shape[0]
        buf.data = &view[0] if buf.end else NULL
        buf.pos = 0
        records = []
        for i in range(count):
            records.append(self.root.read(buf))
        if buf.pos != buf.end:
            raise LeftOverBytesError(f"{buf.end - buf.pos} bytes left over after decoding")
        return records


cdef _Node _compile(schema, keep, dict named, str namespace):
    cdef _Node node
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            node = _Node()
            node.kind = _PRIMITIVES[schema]
            return node
        full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
        found = named.get(full) or named.get(schema)
        if found is None:
            raise ValueError(f"unknown type name {schema!r}")
        return found
    if isinstance(schema, list):
        node = _Node()
        node.kind = K_UNION
        node.children = [_compile(branch, keep, named, namespace) for branch in schema]
        return node
    if not isinstance(schema, dict):
        raise ValueError(f"not an Avro schema: {schema!r}")
    kind = schema.get("type")
    if isinstance(kind, (list, dict)) or kind in _PRIMITIVES:
        node = _compile(kind, keep, named, namespace)
        if "logicalType" in schema:
            node.logical = True
        return node
    node = _Node()
    if kind in ("record", "error", "enum", "fixed"):
        name = schema["name"]
        space = schema.get("namespace", namespace)
        full = name if "." in name or not space else f"{space}.{name}"
        named[full] = node
        namespace = full.rpartition(".")[0]
    if kind in ("record", "error"):
        node.kind = K_RECORD
        wanted = keep.get(full.rpartition(".")[2])
        node.names = [field["name"] for field in schema["fields"]]
        node.children = [_compile(field["type"], keep, named, namespace) for field in schema["fields"]]
        node.kept = [wanted is None or field in wanted for field in node.names]
    elif kind == "enum":
        node.kind = K_ENUM
        node.symbols = list(schema["symbols"])
    elif kind == "fixed":
        node.kind = K_FIXED
        node.size = int(schema["size"])
        node.logical = "logicalType" in schema
    elif kind == "array":
        node.kind = K_ARRAY
        node.children = [_compile(schema["items"], keep, named, namespace)]
    elif kind == "map":
        node.kind = K_MAP
        node.children = [_compile(schema["values"], keep, named, namespace)]
    else:
        raise ValueError(f"unknown Avro type {kind!r}")
    return node


cdef _check_read(_Node node, set seen):
    """Refuse a projection that would read a logical type (fastavro and cavro convert those: a datetime,
    a Decimal), anywhere it reads: the records it skips may hold them."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.logical:
        raise ValueError("a projection reads no logical type")
    if node.kind == K_RECORD:
        for i in range(len(node.children)):
            if node.kept[i]:
                try:
                    _check_read(<_Node>node.children[i], seen)
                except ValueError:
                    raise ValueError(f"a projection reads no logical type (field {node.names[i]})") from None
    elif node.kind in (K_UNION, K_ARRAY, K_MAP):
        for child in node.children:
            _check_read(<_Node>child, seen)


cdef bint _mark_sizeless(_Node node, set seen):
    """Mark (and answer) whether ``node``'s values may take no bytes: null, fixed(0), records of only
    such fields. A record met again while being marked (recursion) counts as taking bytes: only a
    union or an array, which take at least one, can lead back to it."""
    cdef bint sizeless
    if id(node) in seen:
        return node.sizeless
    seen.add(id(node))
    if node.kind == K_NULL:
        sizeless = True
    elif node.kind == K_FIXED:
        sizeless = node.size == 0
    elif node.kind == K_RECORD:
        sizeless = all([_mark_sizeless(<_Node>child, seen) for child in node.children])
    else:
        sizeless = False
        for child in node.children or ():
            _mark_sizeless(<_Node>child, seen)
    node.sizeless = sizeless
    return sizeless
