import NIOCore
import Records
import Testing
import TransformSpec

@Suite struct JSONPathTests {
    let row: JSONValue = .array(["id", "a", "b", "c", "d"].map(JSONValue.string))

    func select(_ path: String, _ value: JSONValue) throws -> String { try JSONPath(path).select(value).serialized }

    @Test func theDocumentedOperators() throws {
        #expect(try select("$", row) == #"["id","a","b","c","d"]"#)
        #expect(try select("$[1]", row) == #""a""#)
        #expect(try select("$[1,3]", row) == #"["a","c"]"#)
        #expect(try select("$[-1]", row) == #""d""#)
        #expect(try select("$[0, -1]", row) == #"["id","d"]"#)
        #expect(try select("$[1:]", row) == #"["a","b","c","d"]"#)
        #expect(try select("$[:2]", row) == #"["id","a"]"#)
        #expect(try select("$[1:3]", row) == #"["a","b"]"#)  // end exclusive, as JavaScript's slice
        #expect(try select("$[0,3:]", row) == #"["id","c","d"]"#)
        #expect(try select("$[-2:]", row) == #"["c","d"]"#)
        #expect(try select("$[*]", row) == #"["id","a","b","c","d"]"#)
        let object = try JSONValue.parse(
            Array(#"{"id":7,"features":{"x":1,"y":[2,3]},"SageMakerOutput":{"label":1}}"#.utf8)
        )
        #expect(try select("$.id", object) == "7")
        #expect(try select("$.features.y[1]", object) == "3")
        #expect(try select("$['id','SageMakerOutput']", object) == #"{"id":7,"SageMakerOutput":{"label":1}}"#)
        #expect(try select("$.features.['x','y']", object) == #"{"x":1,"y":[2,3]}"#)
        #expect(try select("$.features.*", object) == #"[1,[2,3]]"#)
    }

    @Test func unsupportedPathsAreRefusedWithTheDocumentedText() {
        #expect { try JSONPath("$[0:2,246:]") } throws: { $0 is ValidationException }
        do {
            _ = try JSONPath("$[0:2,246:]")
        } catch {
            #expect(
                error.message
                    == "Invalid JsonPath: $[0:2,246:]: only single range filters of format (eg: [1:5]) are supported. Format [0:2,246:] is not supported"
            )
        }
        for bad in ["id", "$.", "$[x]", "$[1", "$.field1.['child1','child2.grandchild']", "$['a','b'].c", "$[1:2:3]"] {
            #expect("\(bad)") { try JSONPath(bad) } throws: { $0 is ValidationException }
        }
    }

    @Test func outOfRangeIndexesAndWrongShapesSaySo() throws {
        #expect {
            try JSONPath("$[7]").select(row)
        } throws: { ($0 as? RecordError)?.message == "$[7] selects index 7, but the record has only 5 elements" }
        #expect {
            try JSONPath("$[-6]").select(row)
        } throws: { ($0 as? RecordError)?.message == "$[-6] selects index -6, but the record has only 5 elements" }
        #expect { try JSONPath("$.id").select(row) } throws: { ($0 as? RecordError)?.code == .badJSONPath }
        #expect(try JSONPath("$[3:99]").select(row).serialized == #"["c","d"]"#)  // slices clamp, as in JavaScript
    }

    @Test func jsonKeepsKeyOrderAndNumberText() throws {
        let text = #"{"b":1.50,"a":[true,null,"x\"y\\z\n"],"c":{"é":-2e3}}"#
        #expect(try JSONValue.parse(Array(text.utf8)).serialized == text)
        #expect(try JSONValue.parse(Array(#" { "k" : "\u00e9\ud83d\ude00" } "#.utf8)).serialized == "{\"k\":\"é😀\"}")
        #expect { try JSONValue.parse(Array(#"{"a":}"#.utf8)) } throws: { ($0 as? RecordError)?.code == .badJSON }
        #expect(try JSONValue.parseSequence(Array("{\"a\":1}\n{\"a\":2}\n".utf8)).count == 2)
    }
}

@Suite struct CSVTests {
    @Test func rowsFollowRFC4180() throws {
        #expect(try CSVRow.parse(Array("a,\"b,c\",\"d\"\"e\",,f".utf8)) == ["a", "b,c", "d\"e", "", "f"])
        #expect(try CSVRow.parse(Array("\"multi\nline\"".utf8)) == ["multi\nline"])
        #expect(CSVRow.serialize(["a", "b,c", "d\"e", "x\ny", " keep"]) == "a,\"b,c\",\"d\"\"e\",\"x\ny\", keep")
        #expect {
            try CSVRow.parse(Array("pine kernels; \"\"Tarama\"\"".utf8))
        } throws: {
            ($0 as? RecordError)?.message.hasPrefix("bare \" in non quoted field found near: pine kernels") == true
        }
        #expect { try CSVRow.parse(Array("\"unterminated".utf8)) } throws: { ($0 as? RecordError)?.code == .badCSV }
    }

    func csvBatches(
        _ text: String,
        strategy: BatchStrategy = .singleRecord,
        limit: Int = 1 << 20,
        chunk: Int = 5
    ) async throws -> [String] {
        var batcher = MiniBatcher(
            source: MemoryStream(Array(text.utf8), chunk: chunk),
            splitType: .line,
            strategy: strategy,
            maxPayloadBytes: limit,
            objectName: "t.csv",
            csvQuoting: true
        )
        var result: [String] = []
        while let batch = try await batcher.next() {
            result.append(String(decoding: batch.payload.readableBytesView, as: UTF8.self))
        }
        return result
    }

    @Test func quotedNewlinesAndCRLFDoNotEndARecord() async throws {
        let text = "1,\"a\nb\",2\r\n3,\"c\"\"\r\nd\",4\r\n5,plain,6"
        #expect(try await csvBatches(text) == ["1,\"a\nb\",2", "3,\"c\"\"\r\nd\",4", "5,plain,6"])
        #expect(
            try await csvBatches(text, strategy: .multiRecord, limit: 30) == [
                "1,\"a\nb\",2\r\n3,\"c\"\"\r\nd\",4\r\n", "5,plain,6",
            ]
        )
    }

    @Test func aQuoteInsideAnUnquotedFieldIsText() async throws {
        #expect(try await csvBatches("a 5\" screen,3\n4,\"x\"\n") == ["a 5\" screen,3", "4,\"x\""])
    }

    @Test func aTenMegabyteQuotedFieldIsOneRecord() async throws {
        let field = String(repeating: "x,\n\"\"", count: 2 << 20)  // 10 MB of commas, newlines and escaped quotes
        let text = "1,\"\(field)\",2\n3,4\n"
        let batches = try await csvBatches(text, limit: 12 << 20, chunk: 1 << 20)
        #expect(batches.count == 2 && batches[0].utf8.count == field.utf8.count + 6 && batches[1] == "3,4")
    }

    @Test func anUnterminatedQuoteFailsWithItsOffset() async throws {
        await #expect {
            _ = try await csvBatches("1,2\n3,\"never closed\n4,5\n")
        } throws: {
            "\($0)".contains("unterminated quoted CSV field starting at byte offset 6")
        }
    }

    @Test func plainSplittingStaysAvailable() async throws {
        var batcher = MiniBatcher(
            source: MemoryStream(Array("1,\"a\nb\"\n".utf8), chunk: 3),
            splitType: .line,
            strategy: .singleRecord,
            maxPayloadBytes: 100,
            objectName: "t.csv"
        )
        var count = 0
        while try await batcher.next() != nil { count += 1 }
        #expect(count == 2)
    }

    @Test(arguments: [CSVHeaderMode.skip, .repeat])
    func headerModesTakeTheFirstLineAside(_ mode: CSVHeaderMode) async throws {
        var batcher = MiniBatcher(
            source: MemoryStream(Array("id,\"na\nme\"\r\n1,a\n2,b\n".utf8), chunk: 4),
            splitType: .line,
            strategy: .multiRecord,
            maxPayloadBytes: 100,
            objectName: "t.csv",
            csvQuoting: true,
            header: mode
        )
        var payloads: [String] = []
        while let batch = try await batcher.next() {
            payloads.append(String(decoding: batch.payload.readableBytesView, as: UTF8.self))
            #expect(batch.firstRecord == 0)
        }
        #expect(payloads == ["1,a\n2,b\n"])
        #expect(batcher.header.map { String(decoding: $0.readableBytesView, as: UTF8.self) } == "id,\"na\nme\"")
    }

    /// A repeated header is part of every request, so it counts against MaxPayloadInMB: the
    /// request (header, newline, records) never exceeds the limit (it did, and got HTTP 400).
    @Test func aRepeatedHeaderCountsInThePayloadBudget() async throws {
        let rows = (0..<200).map { "\($0),\(String(repeating: "v", count: $0 % 13))\n" }.joined()
        let header = "identifier,value_column\n"
        let limit = 100
        var batcher = MiniBatcher(
            source: MemoryStream(Array((header + rows).utf8), chunk: 33),
            splitType: .line,
            strategy: .multiRecord,
            maxPayloadBytes: limit,
            objectName: "t.csv",
            csvQuoting: true,
            header: .repeat
        )
        var sent = ""
        while let batch = try await batcher.next() {
            let request = header.utf8.count + batch.payload.readableBytes
            #expect(request <= limit, "a request of \(request) bytes over a \(limit)-byte limit")
            sent += String(decoding: batch.payload.readableBytesView, as: UTF8.self)
        }
        #expect(sent == rows)
    }
}

@Suite struct JoinTests {
    func job(
        _ contentType: String,
        input: String = "$",
        output: String = "$",
        join: Bool,
        header: String? = nil
    ) throws -> DataProcessor {
        var request = CreateTransformJobRequest()
        request.TransformJobName = "j"
        request.ModelName = "m"
        var transformInput = TransformInput()
        transformInput.DataSource = .init(S3DataSource: .init(S3DataType: "S3Prefix", S3Uri: "in/"))
        transformInput.ContentType = contentType
        transformInput.SplitType = "Line"
        request.TransformInput = transformInput
        var transformOutput = TransformOutput()
        transformOutput.S3OutputPath = "out/"
        transformOutput.Accept = contentType
        transformOutput.AssembleWith = "Line"
        request.TransformOutput = transformOutput
        var resources = TransformResources()
        resources.InstanceType = "ml.m5.large"
        resources.InstanceCount = 1
        request.TransformResources = resources
        request.DataProcessing = .init(InputFilter: input, OutputFilter: output, JoinSource: join ? "Input" : "None")
        if let header { request.Environment = ["BATCHFORM_CSV_HEADER": header] }
        let job = try TransformJobConfiguration(validating: request)
        return DataProcessor(job.dataProcessing, splitType: job.splitType)
    }

    func batch(_ text: String, sequence: Int = 0) -> MiniBatch {
        MiniBatch(
            payload: ByteBuffer(string: text),
            sequenceNumber: sequence,
            firstRecord: 0,
            recordCount: 0,
            byteOffset: 0
        )
    }

    func string(_ buffer: ByteBuffer) -> String { String(decoding: buffer.readableBytesView, as: UTF8.self) }

    @Test func noProcessingHandsBackTheSameBuffers() throws {
        let processor = try job("text/csv", join: false)
        let input = batch("1,2\n")
        #expect(!processor.changesRequests && !processor.changesOutputs)
        let request = try processor.request(for: input, header: nil)
        #expect(
            request.withUnsafeReadableBytes { $0.baseAddress }
                == input.payload.withUnsafeReadableBytes { $0.baseAddress }
        )
    }

    @Test func csvJoinAppendsTheAnswerColumnsThenFilters() throws {
        let processor = try job("text/csv", input: "$[1:]", output: "$[0,-2:]", join: true)
        let input = batch("id1,1,\"x,y\"\nid2,3,4\n")
        #expect(string(try processor.request(for: input, header: nil)) == "1,\"x,y\"\n3,4\n")
        #expect(
            string(try processor.output(ByteBuffer(string: "0.5,a\n0.7,b\n"), for: input, header: nil))
                == "id1,0.5,a\nid2,0.7,b\n"
        )
    }

    @Test func jsonJoinHandlesObjectsAndOtherValues() throws {
        let processor = try job("application/jsonlines", join: true)
        let input = batch("{\"key\":1,\"SageMakerOutput\":\"old\"}\n\"text\"\n")
        let joined = string(try processor.output(ByteBuffer(string: "{\"label\":1}\n[2]\n"), for: input, header: nil))
        #expect(
            joined
                == "{\"key\":1,\"SageMakerOutput\":{\"label\":1}}\n{\"SageMakerInput\":\"text\",\"SageMakerOutput\":[2]}\n"
        )
    }

    @Test func theFormatRulesAreEnforced() {
        #expect(throws: ValidationException.self) { try job("application/x-npy", join: true) }
        #expect(throws: ValidationException.self) { try job("text/csv", input: "$.id", join: false) }
        #expect(throws: ValidationException.self) { try job("application/jsonlines", join: false, header: "repeat") }
        #expect(throws: ValidationException.self) { try job("text/csv", join: false, header: "first") }
        #expect((try? job("application/jsonlines", input: "$.features", join: true)) != nil)
    }
}
