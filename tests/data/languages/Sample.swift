import Foundation

/// Bridges plugin calls to the web view.
public protocol CAPBridgeProtocol: NSObjectProtocol {
    func saveCall(_ call: CAPPluginCall)
}

/// One call from JavaScript.
@objc public class CAPPluginCall: NSObject {
    public let callbackId: String

    init(callbackId: String) {
        self.callbackId = callbackId
    }

    // Resolve with data.
    public func resolve(_ data: [String: Any] = [:]) {
        successHandler(data)
    }

    struct Options {
        var keepAlive: Bool
        func merged(with other: Options) -> Options { other }
    }
}

extension CAPPluginCall {
    public func getString(_ key: String) -> String? {
        return nil
    }
}

enum Kind {
    case one
    func label() -> String { "one" }
}

func makeCall(id: String) -> CAPPluginCall {
    return CAPPluginCall(callbackId: id)
}
