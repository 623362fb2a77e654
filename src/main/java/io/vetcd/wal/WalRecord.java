package io.vetcd.wal;

import io.vetcd.raft.Entry;
import io.vetcd.raft.HardState;
import io.vetcd.raft.Snapshot;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * One record of the log and its bytes. Every record is
 * <pre>
 *   version (1 byte) | kind (1 byte) | body | CRC32C of everything before it (4 bytes)
 * </pre>
 * inside one Chronicle excerpt (which carries the length). The checksum tells a record that was written
 * whole from one a power loss cut short or a disk damaged; the version lets a later format be told
 * apart from garbage; kinds and entry types are fixed codes, never an enum's ordinal, so reordering
 * an enum can never change what an old log means.
 */
sealed interface WalRecord {

  /** The format every record here is written in. */
  byte VERSION = 1;

  byte ENTRY = 1;
  byte HARD_STATE = 2;
  /** The keyspace holds everything up to a point: entries up to it are void. */
  byte COMPACTED = 3;
  /** A snapshot from the leader replaced the keyspace: the whole log before it is void. */
  byte SNAPSHOT = 4;
  /** Who this member is: cluster id, member id and the initial membership. */
  byte MEMBER = 5;
  /** The first record of each generation: where the previous one ended (see {@link Wal}). */
  byte GENERATION = 6;

  /** A Raft entry. */
  record EntryRecord(Entry entry) implements WalRecord {}

  record HardStateRecord(HardState state) implements WalRecord {}

  /** A snapshot point: {@code replace} for one received from the leader. */
  record PointRecord(Snapshot point, boolean replace) implements WalRecord {}

  record MemberRecord(Wal.Identity identity) implements WalRecord {}

  /**
   * Generation {@code generation} was started by a process that had read the log up to Chronicle index
   * {@code previousLastIndex} of generation {@code previous} (0 and -1: no earlier record at all).
   */
  record GenerationRecord(long generation, long previous, long previousLastIndex) implements WalRecord {}

  /** The bytes of a record that cannot be read: what is wrong with it. */
  final class BadRecord extends Exception {
    BadRecord(String reason) {
      super(reason, null, false, false);
    }
  }

  /** Stable codes of entry types in the log. */
  static byte typeCode(Entry.Type type) {
    return switch (type) {
      case NORMAL -> 0;
      case CONF_CHANGE -> 1;
    };
  }

  static Entry.Type type(byte code) throws BadRecord {
    return switch (code) {
      case 0 -> Entry.Type.NORMAL;
      case 1 -> Entry.Type.CONF_CHANGE;
      default -> throw new BadRecord("unknown entry type " + code);
    };
  }

  /**
   * Reads a record. A failed checksum, a version this code does not know and a body that does not
   * parse are all {@link BadRecord}: the caller decides whether that is a torn tail or damage.
   */
  static WalRecord decode(byte[] raw) throws BadRecord {
    if (raw.length < 2 + 4) {
      throw new BadRecord("record of " + raw.length + " bytes is too short");
    }
    int bodyEnd = raw.length - 4;
    CRC32C crc = new CRC32C();
    crc.update(raw, 0, bodyEnd);
    int stored = ByteBuffer.wrap(raw, bodyEnd, 4).getInt();
    if ((int) crc.getValue() != stored) {
      throw new BadRecord("checksum mismatch");
    }
    if (raw[0] != VERSION) {
      throw new BadRecord("record format version " + raw[0] + " is not one this vetcd reads (" + VERSION + ")");
    }
    ByteBuffer b = ByteBuffer.wrap(raw, 2, bodyEnd - 2);
    try {
      WalRecord record = switch (raw[1]) {
        case ENTRY -> {
          long term = b.getLong();
          long index = b.getLong();
          Entry.Type type = type(b.get());
          byte[] data = new byte[b.getInt()];
          b.get(data);
          yield new EntryRecord(new Entry(term, index, type, data));
        }
        case HARD_STATE -> new HardStateRecord(new HardState(b.getLong(), b.getLong(), b.getLong()));
        case COMPACTED, SNAPSHOT -> {
          long index = b.getLong();
          long term = b.getLong();
          List<Long> voters = new ArrayList<>();
          for (int n = b.getInt(); n > 0; n--) {
            voters.add(b.getLong());
          }
          List<Long> learners = new ArrayList<>();
          // Without learners, the record ends with the voters (as before learners existed).
          for (int n = b.hasRemaining() ? b.getInt() : 0; n > 0; n--) {
            learners.add(b.getLong());
          }
          yield new PointRecord(new Snapshot(index, term, voters, learners, new byte[0]), raw[1] == SNAPSHOT);
        }
        case MEMBER -> {
          long clusterId = b.getLong();
          long memberId = b.getLong();
          byte[] membership = new byte[b.getInt()];
          b.get(membership);
          yield new MemberRecord(new Wal.Identity(clusterId, memberId, membership));
        }
        case GENERATION -> new GenerationRecord(b.getLong(), b.getLong(), b.getLong());
        default -> throw new BadRecord("unknown record kind " + raw[1]);
      };
      if (b.hasRemaining()) {
        throw new BadRecord(b.remaining() + " bytes left over after a record of kind " + raw[1]);
      }
      return record;
    } catch (BufferUnderflowException | NegativeArraySizeException | IllegalArgumentException e) {
      throw new BadRecord("record of kind " + raw[1] + " does not parse: " + e);
    }
  }
}
