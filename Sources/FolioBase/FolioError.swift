/// An error that crosses module boundaries: a stable machine-readable code, a message that says
/// how to fix the problem, and an optional underlying cause.
///
/// The code is what scripts and the results database record; the message is for people.
public struct FolioError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A stable identifier for a kind of failure. New codes may be added; existing ones never change meaning.
  public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A file or folder that should exist does not.
    public static let fileNotFound = Code(rawValue: "file_not_found")
    /// A file exists but could not be read.
    public static let fileUnreadable = Code(rawValue: "file_unreadable")
    /// A model folder, id or cache entry could not be resolved.
    public static let modelNotFound = Code(rawValue: "model_not_found")
    /// `config.json` is missing, malformed, or describes a model Folio does not run.
    public static let invalidConfig = Code(rawValue: "invalid_config")
    /// The model type in `config.json` is not a Qwen3.5 model.
    public static let unsupportedModel = Code(rawValue: "unsupported_model")
    /// A safetensors file is truncated, malformed, or disagrees with its header.
    public static let corruptCheckpoint = Code(rawValue: "corrupt_checkpoint")
    /// A tensor the model needs is absent from the checkpoint.
    public static let missingTensor = Code(rawValue: "missing_tensor")
    /// A tensor has a shape other than the configuration implies.
    public static let tensorShapeMismatch = Code(rawValue: "tensor_shape_mismatch")
    /// A tensor is stored in a dtype Folio cannot read.
    public static let unsupportedDType = Code(rawValue: "unsupported_dtype")
    /// `tokenizer.json` is missing or malformed.
    public static let invalidTokenizer = Code(rawValue: "invalid_tokenizer")
    /// The prompt is longer than the model or the caller allows.
    public static let promptTooLong = Code(rawValue: "prompt_too_long")
    /// Bad arguments to an API or command.
    public static let invalidArgument = Code(rawValue: "invalid_argument")
    /// The work was cancelled.
    public static let cancelled = Code(rawValue: "cancelled")
    /// An image was given to a model without a vision tower (a text-only checkpoint); use a full Qwen3.5 checkpoint.
    public static let visionUnavailable = Code(rawValue: "vision_unavailable")

    // MARK: Inbox and intake (issue 4; owned by FolioInbox)

    /// A file in the inbox is empty (zero bytes); there is nothing to process.
    public static let emptyFile = Code(rawValue: "empty_file")
    /// A `.txt`/`.md` document is not valid UTF-8.
    public static let notUTF8 = Code(rawValue: "not_utf8")
    /// A file is neither a PNG or JPEG image (by magic bytes) nor a `.txt`/`.md` text document.
    public static let unsupportedKind = Code(rawValue: "unsupported_kind")
    /// A file disappeared (was removed, renamed or claimed by someone else) before Folio could take it.
    public static let fileVanished = Code(rawValue: "file_vanished")
    /// A path in the inbox is a symbolic link (or passes through one); Folio never follows links there.
    public static let symlinkRefused = Code(rawValue: "symlink_refused")
    /// A path lies (or resolves) outside the inbox.
    public static let outsideInbox = Code(rawValue: "outside_inbox")
    /// A path is a FIFO, socket, device or other non-regular file.
    public static let notRegularFile = Code(rawValue: "not_regular_file")
    /// The operating system refused access (EACCES/EPERM); the message names the path, mode, owner and uid.
    public static let permissionDenied = Code(rawValue: "permission_denied")
    /// The inbox, work, processed, failed, store, database or pipelines locations overlap so output would feed back.
    public static let layoutOverlap = Code(rawValue: "layout_overlap")
    /// Moving or copying a file failed for a reason other than permissions; the file stays where it was.
    public static let moveFailed = Code(rawValue: "move_failed")
    /// Native file-system events (inotify) could not be set up.
    public static let watchFailed = Code(rawValue: "watch_failed")

    // MARK: Images (issue 3: decoding and limits; inbox lessons rows 9-10)

    /// A file is larger than the `max_file_bytes` setting allows; nothing was decoded.
    public static let fileTooLarge = Code(rawValue: "file_too_large")
    /// The bytes are not a PNG or JPEG (detected by signature, not by file extension).
    public static let unsupportedImageFormat = Code(rawValue: "unsupported_image_format")
    /// The image header claims more pixels than the `max_pixels` setting allows; refused before decoding.
    public static let imageTooLarge = Code(rawValue: "image_too_large")
    /// The image data ends before the image does.
    public static let imageTruncated = Code(rawValue: "image_truncated")
    /// libpng or libjpeg rejected the image data.
    public static let imageCorrupt = Code(rawValue: "image_corrupt")
    /// The image is so long and thin (aspect ratio above 200) that the vision preprocessor cannot resize it.
    public static let imageAspectRatioTooLarge = Code(rawValue: "image_aspect_ratio_too_large")
  }

  public var code: Code
  public var message: String
  public var cause: String?

  public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause.map { String(describing: $0) }
  }

  public var description: String {
    if let cause { return "[\(code)] \(message) (cause: \(cause))" }
    return "[\(code)] \(message)"
  }
}

// MARK: - Pipeline and store codes (issue 4)
//
// Codes owned by FolioPipelines and FolioStore. They are written into the `job.error_code` column and
// shown by `folio jobs list`, so they never change meaning once shipped.
extension FolioError.Code {
  /// A pipeline definition in `pipelines/*.yaml` is malformed or inconsistent; the message lists every problem.
  public static let invalidPipeline = FolioError.Code(rawValue: "invalid_pipeline")
  /// A cron expression could not be parsed or never fires.
  public static let invalidSchedule = FolioError.Code(rawValue: "invalid_schedule")
  /// SQLite reported an error the store could not handle (I/O, corruption, full disk, constraint).
  public static let databaseError = FolioError.Code(rawValue: "database_error")
  /// Another process held the database write lock for longer than the busy timeout.
  public static let databaseBusy = FolioError.Code(rawValue: "database_busy")
  /// The database was written by a newer Folio (it has migrations this build does not know).
  public static let databaseTooNew = FolioError.Code(rawValue: "database_too_new")
  /// A document with the same SHA-256 is already recorded and the duplicate policy is `reject`.
  public static let duplicateDocument = FolioError.Code(rawValue: "duplicate_document")
  /// A document id does not exist in the database.
  public static let documentNotFound = FolioError.Code(rawValue: "document_not_found")
  /// A job id does not exist in the database.
  public static let jobNotFound = FolioError.Code(rawValue: "job_not_found")
  /// The caller no longer holds the job's lease (it expired and the job was requeued or taken by another worker).
  public static let leaseLost = FolioError.Code(rawValue: "lease_lost")
  /// A worker stopped (crash, SIGKILL, power loss) while it held the job; recorded when its lease expired.
  public static let leaseExpired = FolioError.Code(rawValue: "lease_expired")
  /// A job was cancelled because a step it reads from failed permanently.
  public static let dependencyFailed = FolioError.Code(rawValue: "dependency_failed")
  /// A full-text search query is not valid FTS5 syntax.
  public static let invalidQuery = FolioError.Code(rawValue: "invalid_query")
}

// MARK: - Daemon residency and queue codes (issue 4, "Model residency" in inbox-lessons)
//
// Owned by FolioDaemon. Written into `intake_failure.error_code` and shown by `folio status` and `folio add`.
extension FolioError.Code {
  /// The job queue holds `max_queued_jobs` waiting jobs: the file stays where it is and is taken once the queue
  /// drains (raise `max_queued_jobs`, or wait).
  public static let queueFull = FolioError.Code(rawValue: "queue_full")
}
