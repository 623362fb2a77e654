package io.vetcd.wal;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.util.Random;
import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.bytes.RandomDataInput;
import org.junit.jupiter.api.Test;

class WrittenCheckTest {
  private final WrittenCheck check = new WrittenCheck();

  @Test
  void aRecordThatReadsBackAsWrittenPasses() {
    byte[] data = randomBytes(200 << 10); // more than one pass of the check's buffer
    Bytes<?> file = Bytes.allocateElasticDirect();
    file.writeSkip(100);
    file.write(data);
    assertDoesNotThrow(() -> check.expect(file, 100, data, 0, data.length));
    file.releaseLast();
  }

  @Test
  void aPageTheCopyNeverReachedIsFoundEvenInTheLastPass() {
    byte[] data = randomBytes(200 << 10);
    Bytes<?> file = Bytes.allocateElasticDirect();
    file.write(data, 0, data.length - 4096);
    file.writeSkip(4096); // a page left as a hole reads back as zeros
    WalException e = assertThrows(WalException.class, () -> check.expect(file, 0, data, 0, data.length));
    assertTrue(e.getMessage().contains("was not written whole"), e.getMessage());
    file.releaseLast();
  }

  @Test
  void aReadBackThatStopsPartWayIsFoundEvenWhenTheDataIsZeros() {
    // A SIGBUS stops the read-back copy too and leaves the rest of the buffer as it was: zeros expected
    // and a buffer that happened to hold zeros would pass, so the buffer starts as the complement.
    byte[] zeros = new byte[8192];
    RandomDataInput stopsHalfWay = (RandomDataInput) Proxy.newProxyInstance(getClass().getClassLoader(),
        new Class<?>[] {RandomDataInput.class}, (proxy, method, args) -> {
          if (!method.getName().equals("read") || args.length != 4) {
            throw new UnsupportedOperationException(method.getName());
          }
          byte[] into = (byte[]) args[1];
          int offset = (int) args[2];
          int length = (int) args[3];
          java.util.Arrays.fill(into, offset, offset + length / 2, (byte) 0);
          return (long) (length / 2);
        });
    assertThrows(WalException.class, () -> check.expect(stopsHalfWay, 0, zeros, 0, zeros.length));
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    new Random(7).nextBytes(b);
    return b;
  }
}
