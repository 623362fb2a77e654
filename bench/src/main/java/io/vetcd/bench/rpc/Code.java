package io.vetcd.bench.rpc;

/**
 * gRPC status codes, named as grpc-go prints them ({@code Canceled}, {@code DeadlineExceeded}), so
 * that this tool's error counts read like those of etcd's own tool.
 */
public enum Code {
  OK("OK"),
  CANCELED("Canceled"),
  UNKNOWN("Unknown"),
  INVALID_ARGUMENT("InvalidArgument"),
  DEADLINE_EXCEEDED("DeadlineExceeded"),
  NOT_FOUND("NotFound"),
  ALREADY_EXISTS("AlreadyExists"),
  PERMISSION_DENIED("PermissionDenied"),
  RESOURCE_EXHAUSTED("ResourceExhausted"),
  FAILED_PRECONDITION("FailedPrecondition"),
  ABORTED("Aborted"),
  OUT_OF_RANGE("OutOfRange"),
  UNIMPLEMENTED("Unimplemented"),
  INTERNAL("Internal"),
  UNAVAILABLE("Unavailable"),
  DATA_LOSS("DataLoss"),
  UNAUTHENTICATED("Unauthenticated");

  private static final Code[] BY_NUMBER = values();
  private final String goName;

  Code(String goName) {
    this.goName = goName;
  }

  /** The code of a {@code grpc-status} value; one this tool does not know is {@link #UNKNOWN}. */
  public static Code of(int number) {
    return number >= 0 && number < BY_NUMBER.length ? BY_NUMBER[number] : UNKNOWN;
  }

  public String goName() {
    return goName;
  }
}
