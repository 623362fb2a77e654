package io.vetcd.server;

import com.google.protobuf.InvalidProtocolBufferException;
import io.vetcd.mvcc.MvccStore;
import io.vetcd.proto.etcdserverpb.AlarmMember;
import io.vetcd.proto.etcdserverpb.AlarmRequest;
import io.vetcd.proto.etcdserverpb.AlarmResponse;
import io.vetcd.proto.etcdserverpb.AlarmType;
import java.util.ArrayList;
import java.util.List;

/**
 * The cluster's alarms (etcd's alarm store): which member raised which alarm. They change only by log
 * entries, so every member holds the same list and, while NOSPACE is raised by any member, every
 * member refuses the writes that grow the keyspace (etcd's capped applier). The list is kept in the
 * keyspace, in the same transaction as the entry that changed it: it survives a restart and travels
 * with a snapshot. This object is the applied list as the apply thread last committed it, for the API
 * (health, status, the quota gate).
 */
final class Alarms {

  /** Where the list lives in the keyspace's records. */
  static final String RECORD = "alarms";

  private volatile List<AlarmMember> applied = List.of();

  /** The alarms raised, in the order they were. */
  List<AlarmMember> list() {
    return applied;
  }

  boolean noSpace() {
    return applied.stream().anyMatch(a -> a.getAlarm() == AlarmType.NOSPACE);
  }

  boolean raised(long member, AlarmType type) {
    return applied.stream().anyMatch(a -> a.getMemberID() == member && a.getAlarm() == type);
  }

  /** What the keyspace holds now: at start, and after a snapshot replaced it. */
  void reload(MvccStore store) {
    try (MvccStore.ReadView view = store.read()) {
      applied = decode(view.record(RECORD));
    }
  }

  /** The list a committed batch left (apply thread). */
  void committed(List<AlarmMember> alarms) {
    applied = List.copyOf(alarms);
  }

  static List<AlarmMember> read(MvccStore.WriteBatch batch) {
    return new ArrayList<>(decode(batch.record(RECORD)));
  }

  private static List<AlarmMember> decode(byte[] record) {
    if (record == null) {
      return List.of();
    }
    try {
      return AlarmResponse.parseFrom(record).getAlarmsList();
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("the alarm record in the keyspace is corrupt", e);
    }
  }

  /**
   * Applies an alarm request to {@code alarms} (changed in place) and writes the result into the batch,
   * answering as etcd's applier does: ACTIVATE with the alarm (new or already raised), DEACTIVATE with
   * the one cleared (none if it was not raised), GET with those of the type asked (all for NONE).
   */
  static AlarmResponse apply(MvccStore.WriteBatch batch, List<AlarmMember> alarms, AlarmRequest request) {
    AlarmResponse.Builder response = AlarmResponse.newBuilder();
    AlarmMember asked = AlarmMember.newBuilder().setMemberID(request.getMemberID()).setAlarm(request.getAlarm()).build();
    switch (request.getAction()) {
      case ACTIVATE -> {
        if (request.getAlarm() == AlarmType.NONE) {
          break;
        }
        if (!alarms.contains(asked)) {
          alarms.add(asked);
          write(batch, alarms);
        }
        response.addAlarms(asked);
      }
      case DEACTIVATE -> {
        if (alarms.remove(asked)) {
          write(batch, alarms);
          response.addAlarms(asked);
        }
      }
      default -> alarms.stream()
          .filter(a -> request.getAlarm() == AlarmType.NONE || a.getAlarm() == request.getAlarm())
          .forEach(response::addAlarms);
    }
    return response.build();
  }

  private static void write(MvccStore.WriteBatch batch, List<AlarmMember> alarms) {
    batch.putRecord(RECORD, AlarmResponse.newBuilder().addAllAlarms(alarms).build().toByteArray());
  }

  /** etcd's words for an alarm in a status response and in etcdctl's listings. */
  static String describe(AlarmMember alarm) {
    return "memberID:" + Long.toUnsignedString(alarm.getMemberID()) + " alarm:" + alarm.getAlarm().name() + " ";
  }
}
