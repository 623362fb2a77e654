package io.vetcd.server;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.UnsafeByteOperations;

/**
 * Protobuf input whose bytes fields alias the array parsed instead of copying out of it. Why: with
 * large values every copy is a copy of the value (a member catching up on 1 MiB entries allocated
 * eight bytes per byte received). Only for arrays no one changes after: an entry's data, a frame
 * received. {@code CodedInputStream.newInstance(byte[])} ignores {@code enableAliasing}: it does not
 * know the array is not changed after, so the input is made from a wrapped (immutable) ByteString.
 */
final class Aliasing {

  private Aliasing() {}

  static CodedInputStream input(byte[] bytes) {
    CodedInputStream in = UnsafeByteOperations.unsafeWrap(bytes).newCodedInput();
    in.enableAliasing(true);
    return in;
  }
}
