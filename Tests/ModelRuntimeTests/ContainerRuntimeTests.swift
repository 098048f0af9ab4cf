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

    @Test func anInstancesShareOfTheGPUsIsPassedByDevice() throws {
        var gpuLaunch = launch
        gpuLaunch.instanceType = "ml.g5.xlarge"
        gpuLaunch.gpus = ["1", "3"]
        let podman = try ContainerRuntime(image: "i", engine: ContainerEngine(executable: "/usr/bin/podman"))
        let docker = try ContainerRuntime(image: "i", engine: ContainerEngine(executable: "/usr/local/bin/docker"))
        let podmanArguments = podman.runArguments(name: "n", port: 1, launch: gpuLaunch, variables: [])
        #expect(podmanArguments.joined(separator: " ").contains("--device nvidia.com/gpu=1 --device nvidia.com/gpu=3"))
        #expect(!podmanArguments.contains("nvidia.com/gpu=all"))
        let dockerArguments = docker.runArguments(name: "n", port: 1, launch: gpuLaunch, variables: [])
        #expect(dockerArguments.joined(separator: " ").contains("--gpus device=1,3"))
    }

    @Test func theGPUsAreSplitRoundRobinUnlessEachInstanceIsGivenACount() {
        let four = ["0", "1", "2", "3"]
        #expect(
            GPUAssignment.split(devices: four, instances: 4, instanceType: "ml.p3.8xlarge", gpusPerInstance: nil)
                == [["0"], ["1"], ["2"], ["3"]]
        )
        #expect(
            GPUAssignment.split(devices: four, instances: 2, instanceType: "ml.g5.12xlarge", gpusPerInstance: nil)
                == [["0", "2"], ["1", "3"]]
        )
        #expect(
            GPUAssignment.split(
                devices: ["0", "1"],
                instances: 3,
                instanceType: "ml.g4dn.xlarge",
                gpusPerInstance: nil
            )
                == [["0"], ["1"], ["0"]]
        )
        #expect(
            GPUAssignment.split(devices: four, instances: 2, instanceType: "ml.p4d.24xlarge", gpusPerInstance: 3)
                == [["0", "1", "2"], ["3", "0", "1"]]
        )
        #expect(
            GPUAssignment.split(devices: four, instances: 2, instanceType: "ml.m5.large", gpusPerInstance: nil)
                == [nil, nil]
        )
        #expect(
            GPUAssignment.split(devices: [], instances: 2, instanceType: "ml.p3.2xlarge", gpusPerInstance: nil)
                == [nil, nil]
        )
    }

    @Test func theMachinesGPUsComeFromCUDAVisibleDevicesElseNvidiaSmi() async throws {
        let folder = NSTemporaryDirectory() + "gpus-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: "\(folder)/nvidia-smi",
            contents: Data(
                """
                #!/bin/sh
                [ "$1" = "-L" ] || exit 2
                echo "GPU 0: NVIDIA A10G (UUID: GPU-aaaa)"
                echo "GPU 1: NVIDIA A10G (UUID: GPU-bbbb)"
                echo "GPU 2: NVIDIA A10G (UUID: GPU-cccc)"

                """.utf8
            ),
            attributes: [.posixPermissions: 0o755]
        )
        #expect(await GPUAssignment.visibleDevices(environment: ["PATH": folder]) == ["0", "1", "2"])
        #expect(
            await GPUAssignment.visibleDevices(environment: ["PATH": folder, "CUDA_VISIBLE_DEVICES": "2, 5"]) == [
                "2", "5",
            ]
        )
        #expect(await GPUAssignment.visibleDevices(environment: ["PATH": "/nonexistent"]).isEmpty)
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
