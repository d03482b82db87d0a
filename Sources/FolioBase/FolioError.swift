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

    // MARK: Images (issue 3: decoding and limits; inbox lessons rows 9-10)

    /// A file is larger than the `max_file_bytes` setting allows; nothing was decoded.
    public static let fileTooLarge = Code(rawValue: "file_too_large")
    /// A file has no bytes at all (often one that is still being written).
    public static let emptyFile = Code(rawValue: "empty_file")
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
