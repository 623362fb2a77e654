package io.vetcd.mvcc;

import com.kenai.jffi.MemoryIO;
import java.util.Comparator;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.provider.MemoryManager;
import org.lmdbjava.BufferProxy;
import org.lmdbjava.ByteArrayProxy;

/**
 * lmdbjava's byte[] proxy without its garbage. LMDB reads a key or value handed to it from native
 * memory; lmdbjava's own byte[] proxy mallocs a block for every one, freed by a finalizer. Under puts
 * that was 20,000 finalizable objects a second on every member: each young collection had to find
 * them and keep them (and their memory) alive for one more round, ~1 MB copied and 3 ms of every
 * pause. Here each thread copies into native memory of its own, allocated once and reused.
 *
 * <p>Reuse is safe because LMDB holds on to a key or value only until the call it was passed to
 * returns, and one call takes at most a key and a value: each thread has {@link #SLOTS} blocks, taken
 * in turn. Values come back as fresh byte arrays, copied straight from the map.
 */
final class ScratchByteArrayProxy extends BufferProxy<byte[]> {
  static final ScratchByteArrayProxy PROXY = new ScratchByteArrayProxy();

  /** More than the two (key, value) any one LMDB call takes. */
  private static final int SLOTS = 4;
  /** A block bigger than this (a large value) is given back when its slot comes round again. */
  private static final int KEPT_BYTES = 64 * 1024;
  private static final MemoryManager MEMORY = Runtime.getSystemRuntime().getMemoryManager();
  private static final MemoryIO NATIVE = MemoryIO.getInstance();
  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  private ScratchByteArrayProxy() {}

  /** One thread's blocks. A block is malloc'ed memory freed by jnr's finalizer: rare, so harmless. */
  private static final class Scratch {
    private final Pointer[] slots = new Pointer[SLOTS];
    private int next;

    Pointer take(int size) {
      int i = next;
      next = (i + 1) % SLOTS;
      Pointer block = slots[i];
      if (block == null || block.size() < size || block.size() > Math.max(KEPT_BYTES, size)) {
        block = MEMORY.allocateDirect(Math.max(size, 256));
        slots[i] = block;
      }
      return block;
    }
  }

  @Override
  protected Pointer in(byte[] buffer, Pointer ptr) {
    Pointer block = SCRATCH.get().take(buffer.length);
    block.put(0, buffer, 0, buffer.length);
    ptr.putLong(STRUCT_FIELD_OFFSET_SIZE, buffer.length);
    ptr.putAddress(STRUCT_FIELD_OFFSET_DATA, block.address());
    return block;
  }

  @Override
  protected Pointer in(byte[] buffer, int size, Pointer ptr) {
    return null; // MDB_RESERVE: not used with byte arrays (as in lmdbjava's own proxy)
  }

  @Override
  protected byte[] out(byte[] buffer, Pointer ptr) {
    long address = ptr.getAddress(STRUCT_FIELD_OFFSET_DATA);
    byte[] bytes = new byte[(int) ptr.getLong(STRUCT_FIELD_OFFSET_SIZE)];
    NATIVE.getByteArray(address, bytes, 0, bytes.length);
    return bytes;
  }

  @Override
  protected byte[] allocate() {
    return new byte[0];
  }

  @Override
  protected void deallocate(byte[] buffer) {}

  @Override
  protected byte[] getBytes(byte[] buffer) {
    return buffer.clone();
  }

  @Override
  protected Comparator<byte[]> getSignedComparator() {
    return ByteArrayProxy::compareArraysSigned;
  }

  @Override
  protected Comparator<byte[]> getUnsignedComparator() {
    return ByteArrayProxy::compareArrays;
  }
}
