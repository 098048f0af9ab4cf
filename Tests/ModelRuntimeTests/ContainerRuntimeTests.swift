import Foundation
import Testing

@testable import ModelRuntime

@Suite struct ContainerRuntimeTests {
    let launch = InstanceLaunch(
        index: 1,
        jobName: "Nightly-Scores",
        modelDirectory: "/tmp/model",
        environment: [:],
        logFile: "/tmp/x.log",
        instanceType: "ml.m5.large"
    )

    @Test func runArgumentsFollowTheContainerContract() throws {
        let runtime = try ContainerRuntime(
            image: "registry/model:1",
            engine: ContainerEngine(executable: "/usr/bin/podman")
        )
        let arguments = runtime.runArguments(
            name: "batchform-x-2",
            port: 4321,
            launch: launch,
            variables: ["SM_MODEL_DIR", "A"]
        )
        #expect(
            arguments == [
                "run", "--name", "batchform-x-2", "--init", "-p", "127.0.0.1:4321:8080", "-v",
                "/tmp/model:/opt/ml/model:ro",
                "-e", "A", "-e", "SM_MODEL_DIR", "registry/model:1", "serve",
            ]
        )
    }

    @Test func gpuInstanceTypesGetTheGPUsInEachEnginesSpelling() throws {
        var gpuLaunch = launch
        gpuLaunch.instanceType = "ml.g5.xlarge"
        let podman = try ContainerRuntime(image: "i", engine: ContainerEngine(executable: "/usr/bin/podman"))
        let docker = try ContainerRuntime(image: "i", engine: ContainerEngine(executable: "/usr/local/bin/docker"))
        #expect(
            podman.runArguments(name: "n", port: 1, launch: gpuLaunch, variables: []).contains("nvidia.com/gpu=all")
        )
        let dockerArguments = docker.runArguments(name: "n", port: 1, launch: gpuLaunch, variables: [])
        #expect(dockerArguments.joined(separator: " ").contains("--gpus all"))
        #expect(!docker.runArguments(name: "n", port: 1, launch: launch, variables: []).contains("--gpus"))
        #expect(GPUAssignment.isGPU(instanceType: "ml.p4d.24xlarge"))
        #expect(!GPUAssignment.isGPU(instanceType: "ml.inf2.xlarge"))
        #expect(!GPUAssignment.isGPU(instanceType: "ml.c5.large"))
    }

    @Test func containerNamesComeFromTheJobAndInstance() {
        #expect(ContainerRuntime.containerName(job: "Nightly-Scores", index: 0) == "batchform-nightly-scores-1")
    }

    @Test func theEngineIsChosenByVariableThenPodmanThenDocker() throws {
        let folder = NSTemporaryDirectory() + "engines-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["podman", "docker", "nerdctl"] {
            _ = FileManager.default.createFile(
                atPath: "\(folder)/\(name)",
                contents: Data("#!/bin/sh\n".utf8),
                attributes: [.posixPermissions: 0o755]
            )
        }
        #expect(try ContainerEngine.find(environment: ["PATH": folder])?.executable == "\(folder)/podman")
        try FileManager.default.removeItem(atPath: "\(folder)/podman")
        #expect(try ContainerEngine.find(environment: ["PATH": folder])?.isDocker == true)
        #expect(
            try ContainerEngine.find(environment: ["PATH": folder, "BATCHFORM_CONTAINER_ENGINE": "nerdctl"])?.executable
                == "\(folder)/nerdctl"
        )
        #expect(throws: RuntimeError.self) {
            try ContainerEngine.find(environment: ["PATH": folder, "BATCHFORM_CONTAINER_ENGINE": "nope"])
        }
        #expect(try ContainerEngine.find(environment: ["PATH": "/nonexistent"]) == nil)
    }

    @Test func noEngineIsAClearErrorNamingTheImage() {
        #expect {
            _ = try ContainerRuntime(image: "123.dkr.ecr.us-east-1.amazonaws.com/kmeans:1", engine: nil)
        } throws: { error in
            let message = (error as? RuntimeError)?.message ?? ""
            return message.contains("Image 123.dkr.ecr.us-east-1.amazonaws.com/kmeans:1 is a container image")
                && message.contains("apt-get install podman")
        }
    }
}
