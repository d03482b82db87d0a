import FolioBase

// Codes owned by FolioDaemon (issue 4). They are written into `job.error_code` / `intake_failure.error_code` and
// shown by `folio jobs list`, so they never change meaning once shipped.
extension FolioError.Code {
  /// A step ran past its timeout (the pipeline's `timeout`, capped by `max_step_timeout`).
  public static let stepTimeout = FolioError.Code(rawValue: "step_timeout")
  /// The daemon stopped during the job and returned it to the queue (the attempt does not count).
  public static let interrupted = FolioError.Code(rawValue: "interrupted")
  /// `folio.yaml`, a `FOLIO_*` variable or a flag has a value Folio cannot use; the message names it and its source.
  public static let invalidConfiguration = FolioError.Code(rawValue: "invalid_configuration")
  /// The model failed while generating (an engine error that is not the input's fault).
  public static let generationFailed = FolioError.Code(rawValue: "generation_failed")
}
