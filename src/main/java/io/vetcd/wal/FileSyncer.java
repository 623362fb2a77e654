package io.vetcd.wal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import net.openhft.posix.MSyncFlag;
import net.openhft.posix.PosixAPI;

/**
 * How the log reaches the disk: a file's data, and a directory's entries. The log forces them itself
 * rather than through Chronicle's msync, which reports a failure only to its logger and returns as if
 * it had worked; here a failed sync is an {@link IOException} the append thread sees. Tests substitute
 * one that records what was synced, or fails.
 */
public interface FileSyncer extends AutoCloseable {

  /** Forces the file's written data (and the size needed to read it) to disk: fdatasync. */
  void force(Path file) throws IOException;

  /**
   * Forces the {@code length} bytes of {@code file} from {@code offset}, mapped at {@code address}, to
   * disk (msync MS_SYNC): the range the log wrote since its last sync, cheaper than a whole file's
   * fdatasync (measured: ~200 vs ~300 µs per sync of a few records). By default the whole file.
   */
  default void forceMapped(Path file, long offset, long length, long address) throws IOException {
    force(file);
  }

  /** Forces a directory's entries to disk, so that files created or deleted in it stay so: fsync. */
  void forceDirectory(Path dir) throws IOException;

  @Override
  default void close() {}

  /**
   * The real one. On Linux, fdatasync of a file writes back the pages dirtied through a shared mapping
   * of it too (the kernel tracks them since 2.6.19), which is how Chronicle writes. The file written
   * now is kept open: it is forced after every group of records.
   */
  static FileSyncer disk() {
    return new FileSyncer() {
      private Path openFile;
      private FileChannel channel;

      @Override
      public void force(Path file) throws IOException {
        if (!file.equals(openFile)) {
          close();
          channel = FileChannel.open(file, StandardOpenOption.WRITE);
          openFile = file;
        }
        channel.force(false);
      }

      @Override
      public void forceMapped(Path file, long offset, long length, long address) throws IOException {
        PosixAPI posix = PosixAPI.posix();
        if (posix.msync(address, length, MSyncFlag.MS_SYNC) != 0) {
          throw new IOException("msync of " + file + " failed: " + posix.lastErrorStr());
        }
      }

      @Override
      public void forceDirectory(Path dir) throws IOException {
        try (FileChannel directory = FileChannel.open(dir, StandardOpenOption.READ)) {
          directory.force(true);
        }
      }

      @Override
      public void close() {
        if (channel != null) {
          try {
            channel.close();
          } catch (IOException e) {
            // nothing was written through it: closing cannot lose anything
          }
          channel = null;
          openFile = null;
        }
      }
    };
  }
}
